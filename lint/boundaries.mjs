// ESLint rule `tether/boundaries`: imports point one way.
//
//   api/, proto/            ← the contract: imports nothing of ours
//   kube/                   ← the Kubernetes client: the contract only
//   discovery-handlers/     ← the contract; one handler never imports another (shared code
//                             sits at discovery-handlers/*.ts or in sdk/)
//   agent/, controller/     ← neither imports the other
//   bin/                    ← the CLI: any product folder
//   mocks/, test/, bench/, deploy/ are never imported by product code.
//
// Relative specifiers are resolved against the importing file, so `../../agent/x.ts` and
// `../agent/x.ts` are judged by where they land, not by how they are spelled.
import { dirname, relative, resolve, sep } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const PRODUCT = ['api', 'proto', 'kube', 'discovery-handlers', 'agent', 'controller', 'bin'];
const NEVER_FROM_PRODUCT = ['mocks', 'test', 'bench', 'deploy', 'lint'];

/** Top folders each product folder may import from (besides itself). */
const ALLOWED = {
  api: [],
  proto: [],
  kube: ['api'],
  'discovery-handlers': ['api', 'proto'],
  agent: ['api', 'proto', 'kube', 'discovery-handlers'],
  controller: ['api', 'kube'],
  bin: ['api', 'proto', 'kube', 'discovery-handlers', 'agent', 'controller'],
};

/** Top folder and the rest of a repo-relative path. */
function split(path) {
  const parts = path.split(sep);
  return { top: parts[0], parts };
}

/** Why importing `target` from `source` (both repo-relative) breaks a boundary, or undefined. */
export function boundaryViolation(source, target) {
  const from = split(source);
  const to = split(target);
  if (!PRODUCT.includes(from.top) || to.top === '..') return undefined;
  if (NEVER_FROM_PRODUCT.includes(to.top)) return `product code (${from.top}/) never imports ${to.top}/`;
  if (from.top === to.top) {
    if (from.top !== 'discovery-handlers') return undefined;
    // discovery-handlers/<a>/… may import discovery-handlers/*.ts, sdk/ and its own folder only
    // (the registry, a top-level file, imports every handler).
    if (from.parts.length <= 2) return undefined;
    const ownHandler = from.parts.length > 2 ? from.parts[1] : undefined;
    const targetHandler = to.parts.length > 2 ? to.parts[1] : undefined;
    if (targetHandler === undefined || targetHandler === ownHandler || targetHandler === 'sdk') return undefined;
    return `a handler never imports another handler (discovery-handlers/${targetHandler}/); share code at discovery-handlers/*.ts`;
  }
  if (!PRODUCT.includes(to.top)) return undefined;
  if (ALLOWED[from.top].includes(to.top)) return undefined;
  return `${from.top}/ may import only ${[...ALLOWED[from.top], 'itself'].join(', ')} (not ${to.top}/)`;
}

const rule = {
  meta: {
    type: 'problem',
    docs: {
      description: 'imports point one way: contract ← kube ← handlers ← agent/controller ← bin; product never imports tests or mocks',
    },
    schema: [],
  },
  create(context) {
    const source = relative(ROOT, context.filename);
    function check(node) {
      const spec = node.source?.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = relative(ROOT, resolve(dirname(context.filename), spec));
      const why = boundaryViolation(source, target);
      if (why !== undefined) context.report({ node: node.source, message: `import of ${spec}: ${why}` });
    }
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression: check,
    };
  },
};

export default { rules: { boundaries: rule } };
