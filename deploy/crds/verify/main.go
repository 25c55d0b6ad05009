// Command verify checks Tether's CRD manifests with the apiserver's own code, no cluster needed:
//
//  1. ValidateCustomResourceDefinition: structural-schema rules, list/map types, and CEL rules
//     compiled and cost-estimated exactly as kube-apiserver does when the CRD is created.
//  2. Every example from ../examples.ts goes through the custom-resource pipeline: pruning
//     (which must drop nothing from an example), defaulting, OpenAPI validation, then CEL
//     validation (with oldSelf for update examples). The outcome must match the example's
//     expectation: valid, schema-invalid or cel-invalid.
//
// Usage (crds.test.ts runs this when Go and the modules are available):
//
//	node deploy/crds/examples.ts | (cd deploy/crds/verify && go run . - ../*.tether.dev.yaml)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	apiextensions "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"
)

type example struct {
	Name   string      `json:"name"`
	Kind   string      `json:"kind"`
	Expect string      `json:"expect"`
	Object interface{} `json:"object"`
	Old    interface{} `json:"old"`
}

type kindCheck struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

func loadCRD(path string) (*kindCheck, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &v1); err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1)
	var crd apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &crd, nil); err != nil {
		return nil, "", err
	}
	if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), &crd); len(errs) > 0 {
		return nil, "", fmt.Errorf("%s is not a valid CRD:\n  %s", path, strings.Join(errorStrings(errs), "\n  "))
	}
	// With a single version, conversion moves the schema to spec.validation.
	props := crd.Spec.Validation
	if len(crd.Spec.Versions) > 0 && crd.Spec.Versions[0].Schema != nil {
		props = crd.Spec.Versions[0].Schema
	}
	s, err := structuralschema.NewStructural(props.OpenAPIV3Schema)
	if err != nil {
		return nil, "", err
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(props.OpenAPIV3Schema)
	if err != nil {
		return nil, "", err
	}
	fmt.Printf("ok   CRD %s: structural, CEL compiles within cost limits\n", path)
	return &kindCheck{structural: s, validator: validator, cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}, crd.Spec.Names.Kind, nil
}

func errorStrings(errs field.ErrorList) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// prepare prunes and defaults obj as the apiserver does on decode; it reports whether pruning
// dropped anything.
func (k *kindCheck) prepare(obj interface{}) (pruned bool) {
	if obj == nil {
		return false
	}
	before, _ := json.Marshal(obj)
	pruning.Prune(obj, k.structural, true)
	after, _ := json.Marshal(obj)
	defaulting.Default(obj, k.structural)
	return string(before) != string(after)
}

func (k *kindCheck) check(ex example) (string, []string) {
	if k.prepare(ex.Object) || k.prepare(ex.Old) {
		return "pruned", []string{"pruning dropped fields: the schema is missing a property"}
	}
	var schemaErrs field.ErrorList
	if ex.Old == nil {
		schemaErrs = apiservervalidation.ValidateCustomResource(nil, ex.Object, k.validator)
	} else {
		schemaErrs = apiservervalidation.ValidateCustomResourceUpdate(nil, ex.Object, ex.Old, k.validator)
	}
	celErrs, _ := k.cel.Validate(context.Background(), nil, k.structural, ex.Object, ex.Old, celconfig.RuntimeCELCostBudget)
	messages := errorStrings(append(schemaErrs, celErrs...))
	switch {
	case len(schemaErrs) > 0:
		return "schema-invalid", messages
	case len(celErrs) > 0:
		return "cel-invalid", messages
	default:
		return "valid", messages
	}
}

func run(examplesPath string, crdPaths []string) (failures int, err error) {
	kinds := map[string]*kindCheck{}
	for _, path := range crdPaths {
		k, kind, err := loadCRD(path)
		if err != nil {
			return 0, err
		}
		kinds[kind] = k
	}
	var raw []byte
	if examplesPath == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(examplesPath)
	}
	if err != nil {
		return 0, err
	}
	var examples []example
	// utiljson decodes integers as int64, as the apiserver does (CEL's int needs that).
	if err := utiljson.Unmarshal(raw, &examples); err != nil {
		return 0, err
	}
	if len(examples) == 0 {
		return 0, fmt.Errorf("no examples read")
	}
	for _, ex := range examples {
		k, ok := kinds[ex.Kind]
		if !ok {
			return 0, fmt.Errorf("example %q: no CRD for kind %q", ex.Name, ex.Kind)
		}
		got, messages := k.check(ex)
		status := "ok  "
		if got != ex.Expect {
			status = "FAIL"
			failures++
		}
		fmt.Printf("%s %-15s %-45s expect=%-14s got=%-14s %s\n", status, ex.Kind, ex.Name, ex.Expect, got, strings.Join(messages, " | "))
	}
	return failures, nil
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: verify <examples.json|-> <crd.yaml>...")
		os.Exit(2)
	}
	failures, err := run(os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if failures > 0 {
		fmt.Printf("%d examples did not match their expectation\n", failures)
		os.Exit(1)
	}
}
