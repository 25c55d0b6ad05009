/** Log lines for people: pino's JSON records as `12:00:01 WARN message key=value … err=…`. */

const LEVEL_NAMES: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** One JSON log record → one readable line (a line that is not JSON passes through). */
export function formatLogLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { level, time, msg, err, ...rest } = record;
  const clock = typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : '';
  const fields = Object.entries(rest).map(([key, value]) => `${key}=${text(value)}`);
  const error = typeof err === 'object' && err !== null && 'message' in err ? [`err=${text(err.message)}`] : [];
  const name = typeof level === 'number' ? (LEVEL_NAMES[level] ?? String(level)) : text(level);
  return `${[clock, name, msg === undefined ? '' : text(msg), ...fields, ...error].filter((part) => part !== '').join(' ')}\n`;
}
