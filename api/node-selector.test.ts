import { describe, expect, it } from 'vitest';
import { nodeMatches } from './node-selector.ts';

const node = { name: 'edge-1', labels: { zone: 'a', cameras: 'yes', gen: '3' } };

describe('nodeMatches', () => {
  it.each([
    ['no selector', undefined, true],
    ['In match', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }] }, true],
    ['In miss', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }] }, false],
    ['NotIn', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['b'] }] }] }, true],
    ['Exists', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cameras', operator: 'Exists' }] }] }, true],
    ['DoesNotExist', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cameras', operator: 'DoesNotExist' }] }] }, false],
    ['Gt', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['2'] }] }] }, true],
    ['Lt', { nodeSelectorTerms: [{ matchExpressions: [{ key: 'gen', operator: 'Lt', values: ['2'] }] }] }, false],
    ['fields', { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['edge-1'] }] }] }, true],
    [
      'AND within a term',
      {
        nodeSelectorTerms: [
          {
            matchExpressions: [
              { key: 'zone', operator: 'In', values: ['a'] },
              { key: 'x', operator: 'Exists' },
            ],
          },
        ],
      },
      false,
    ],
    [
      'OR across terms',
      {
        nodeSelectorTerms: [
          { matchExpressions: [{ key: 'x', operator: 'Exists' }] },
          { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
        ],
      },
      true,
    ],
    ['empty term selects nothing', { nodeSelectorTerms: [{}] }, false],
  ] as const)('%s', (_name, selector, expected) => {
    expect(nodeMatches(selector as never, node)).toBe(expected);
  });
});
