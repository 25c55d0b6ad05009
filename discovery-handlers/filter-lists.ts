/**
 * A handler's include/exclude filter after validation (its schema is built by
 * `includeExcludeFilter` in details-schema.ts): Tether's `{include, exclude}` or Akri's
 * `{action, items}`, as two lists. A module of its own so the handlers' run-time code loads
 * no TypeBox (issue 15).
 */

/** A filter's value after validation, in either shape. */
export type FilterInput =
  | { readonly include: readonly string[]; readonly exclude: readonly string[] }
  | { readonly action: 'Include' | 'Exclude'; readonly items: readonly string[] };

/** Both shapes as trimmed include and exclude lists, each value with its field path. */
export function filterLists(
  raw: FilterInput | undefined,
  path: string,
): { include: { value: string; path: string }[]; exclude: { value: string; path: string }[] } {
  const withPaths = (list: readonly string[], at: string): { value: string; path: string }[] =>
    list.map((value, i) => ({ value: value.trim(), path: `${at}[${i}]` }));
  if (raw === undefined) return { include: [], exclude: [] };
  if ('items' in raw) {
    const items = withPaths(raw.items, `${path}.items`);
    return raw.action === 'Include' ? { include: items, exclude: [] } : { include: [], exclude: items };
  }
  return { include: withPaths(raw.include, `${path}.include`), exclude: withPaths(raw.exclude, `${path}.exclude`) };
}
