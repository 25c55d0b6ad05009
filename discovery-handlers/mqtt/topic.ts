/** MQTT topic names and filters (MQTT 3.1.1 §4.7, MQTT 5 §4.7). Pure. */

/** Why `filter` is not a valid topic filter, or undefined when it is. */
export function filterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'must not be empty';
  if (Buffer.byteLength(filter) > 65_535) return 'longer than 65535 bytes';
  if (filter.includes('\u0000')) return 'must not contain NUL';
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return "'#' must be a whole level and the last one";
    if (level.includes('+') && level !== '+') return "'+' must be a whole level";
  }
  return undefined;
}

/** Why `topic` is not a valid topic name (no wildcards), or undefined when it is. */
export function topicProblem(topic: string): string | undefined {
  if (topic.length === 0) return 'must not be empty';
  if (/[+#]/.test(topic) || topic.includes('\0')) return 'must not contain +, # or NUL';
  if (Buffer.byteLength(topic) > 65_535) return 'longer than 65535 bytes';
  return undefined;
}

/**
 * Whether `topic` matches `filter`. Per the spec, filters starting with a wildcard do not
 * match topics starting with `$` (e.g. `$SYS/...`).
 */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
