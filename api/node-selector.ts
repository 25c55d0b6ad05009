/** Pure evaluation of a core NodeSelector against a Node's labels and fields. */
import type { NodeSelector, NodeSelectorRequirement } from './schema.ts';

export interface NodeFacts {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

function requirementHolds(requirement: NodeSelectorRequirement, values: Readonly<Record<string, string>>): boolean {
  const actual = values[requirement.key];
  const wanted = requirement.values ?? [];
  switch (requirement.operator) {
    case 'In':
      return actual !== undefined && wanted.includes(actual);
    case 'NotIn':
      return actual === undefined || !wanted.includes(actual);
    case 'Exists':
      return actual !== undefined;
    case 'DoesNotExist':
      return actual === undefined;
    case 'Gt':
    case 'Lt': {
      const [bound] = wanted;
      if (actual === undefined || bound === undefined || !/^-?\d+$/.test(actual)) return false;
      return requirement.operator === 'Gt' ? Number(actual) > Number(bound) : Number(actual) < Number(bound);
    }
  }
}

/** Whether the node is selected; an absent selector selects every node. Terms are ORed. */
export function nodeMatches(selector: NodeSelector | undefined, node: NodeFacts): boolean {
  if (selector === undefined) return true;
  const fields = { 'metadata.name': node.name };
  return selector.nodeSelectorTerms.some((term) => {
    const expressions = term.matchExpressions ?? [];
    const fieldReqs = term.matchFields ?? [];
    if (expressions.length === 0 && fieldReqs.length === 0) return false; // an empty term selects nothing
    return expressions.every((r) => requirementHolds(r, node.labels)) && fieldReqs.every((r) => requirementHolds(r, fields));
  });
}
