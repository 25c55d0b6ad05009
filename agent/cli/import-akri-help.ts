/**
 * What `tether import-akri --help` says, and its option choices: plain constants, so the CLI
 * can show them without loading the converter (or TypeBox). import-akri.test.ts checks that
 * the choices equal api/schema.ts's HANDLER_SOURCES.
 */

/** `--handler-source` choices: `spec.handlerSource`'s values. */
export const HANDLER_SOURCE_CHOICES = ['Auto', 'BuiltIn', 'External'] as const;

/** The mapping table and the input/output rules, shown after the options. */
export const IMPORT_AKRI_HELP = `
Input: a file, or - for stdin: YAML (several documents) or JSON; Lists (kind: List,
ConfigurationList) are unpacked. Other kinds are skipped with a warning; a Configuration that
is not akri.sh/v0, or a document that is no Kubernetes object, is an error (documents are
numbered from 1). Output, on stdout: the DeviceDiscoveries as YAML documents (notes as
comments) or, with -o json, one v1 List - ready for \`kubectl apply -f -\`. Each has passed
Tether's DeviceDiscovery schema. Warnings (what does not carry over) go to stderr. If any
document cannot be converted, nothing is printed and the exit code is 1; also when there is
no Configuration at all.

Mapping (Akri Configuration -> Tether DeviceDiscovery):
  metadata.name, .namespace            same (the name must be a DNS-1035 label of <= 40
                                       characters: it is part of tether.dev/ resource names)
  metadata.labels, .annotations        same, less Helm's ownership marks of the Akri release
                                       and kubectl's last-applied-configuration
  spec.discoveryHandler.name           spec.handler, as is: debugEcho, udev, onvif run Tether's
                                       built-ins; any other (opcua) runs Akri's external
                                       handler, whose DaemonSet must stay deployed (warning)
  spec.discoveryHandler.discoveryDetails
                                       spec.details, the same YAML string, byte for byte
                                       (left out when empty; a warning if it is not YAML)
  spec.discoveryHandler.discoveryProperties[]
                                       spec.properties[]: value, or valueFrom.secretKeyRef /
                                       configMapKeyRef {name, key, optional}. Tether reads them
                                       from the DeviceDiscovery's namespace: a reference to
                                       another one (Akri's default: "default") is a warning
  spec.capacity                        spec.capacity
  spec.brokerSpec.brokerPodSpec        spec.broker.pod.spec
  spec.brokerSpec.brokerJobSpec        spec.broker.job.spec (Akri ran one Job per device,
                                       Tether one per node that sees it, up to capacity: a
                                       warning when capacity > 1)
                                       "{{PLACEHOLDER}}" in resources is dropped: Tether's
                                       controller adds tether.dev/<device>: "1" to the broker's
                                       FIRST container itself, so the container that had the
                                       placeholder is moved first (warning); placeholders on
                                       other or init containers are warnings
  spec.instanceServiceSpec             spec.deviceService (a selector is left out: Tether
                                       selects the device's brokers itself)
  spec.configurationServiceSpec        spec.discoveryService (the same)
  spec.brokerProperties                not carried over (warning: Tether has no broker
                                       properties; set them as env on the broker containers)
  --handler-source Auto|BuiltIn|External
                                       spec.handlerSource on every DeviceDiscovery (External:
                                       keep running Akri's discovery handler images)
  anything else (status, other fields) not carried over, with a warning naming the field

Examples:
  tether import-akri akri-configurations.yaml | kubectl apply -f -
  kubectl get configurations.akri.sh -A -o yaml | tether import-akri - > discoveries.yaml
`;
