import { describe, expect, it } from 'vitest';
import { formatLogLine } from './log-format.ts';

describe('formatLogLine', () => {
  it('turns a pino record into time, level, message, fields and the error message', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 2, 3, 4, 5),
      msg: 'Lost the broker',
      broker: 'mqtt://b',
      failures: 2,
      err: { type: 'Error', message: 'ECONNREFUSED', stack: '…' },
    });
    expect(formatLogLine(line)).toBe('03:04:05 WARN Lost the broker broker=mqtt://b failures=2 err=ECONNREFUSED\n');
  });

  it('passes a line that is not JSON through', () => {
    expect(formatLogLine('plain\n')).toBe('plain\n');
  });
});
