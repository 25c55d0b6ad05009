/**
 * A one-line progress display for the slow parts of the test harnesses (the Kubernetes build,
 * Tether's image, image imports): which part is working, how far it is when that is known, and
 * how long it has taken.
 *
 * On a terminal it is a single line redrawn in place (`\r`, erase line) every second and on
 * every update; `done()` leaves the final text on that line. Anywhere else (CI logs, a file)
 * it prints plain lines with no escape codes: one when the phase changes, a heartbeat every
 * 30 s while a phase runs, and the final line — so a 15-minute build shows it is alive without
 * printing each of its thousands of packages.
 *
 * Hand-written on purpose: a dependency would be bigger than this file.
 */

/** What is shown; `fraction` (0–1) draws a bar, `detail` is shown on a terminal only. */
export interface ProgressState {
  /** What runs now, e.g. `kubernetes v1.37.2: compiling`. A change prints a line in plain mode. */
  readonly phase: string;
  /** Finer detail (the package being compiled); terminal only. */
  readonly detail?: string;
  /** Done / total when known. */
  readonly done?: number;
  readonly total?: number;
}

/** A running progress line. Not for concurrent use by two tasks. */
export interface Progress {
  update(state: ProgressState): void;
  /** Ends the line with `text` and the elapsed time. */
  done(text: string): void;
}

export interface ProgressOptions {
  /** Prefix in brackets: `[build]`. */
  readonly label: string;
  /** Default process.stderr. */
  readonly stream?: NodeJS.WriteStream;
  /** Default: `stream.isTTY`. */
  readonly tty?: boolean;
  /** Plain mode: a heartbeat line this often while a phase runs (default 30 s). */
  readonly heartbeatMs?: number;
}

const BAR_WIDTH = 20;

/** `1m05s`, `12s`, `0.4s`. */
export function formatElapsed(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const seconds = Math.floor(ms / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
}

/** `▕██████░░░░░░░░░░░░░░▏ 31%` for a known fraction; empty when the total is unknown. */
export function formatBar(done: number | undefined, total: number | undefined, width = BAR_WIDTH): string {
  if (done === undefined || total === undefined || total <= 0) return '';
  const fraction = Math.min(1, Math.max(0, done / total));
  const filled = Math.round(fraction * width);
  return `▕${'█'.repeat(filled)}${'░'.repeat(width - filled)}▏ ${String(Math.floor(fraction * 100)).padStart(3)}%`;
}

/** The text of one progress line (no escape codes), cut to `columns`. */
export function formatProgressLine(label: string, state: ProgressState, elapsedMs: number, columns = 200): string {
  // Elapsed time, bar and count first: a narrow terminal cuts the end of the line, not them.
  const count =
    state.done !== undefined && state.total !== undefined
      ? `${state.done}/${state.total}`
      : state.done !== undefined
        ? `${state.done}`
        : '';
  const bar = formatBar(state.done, state.total);
  const head = [`[${label}]`, formatElapsed(elapsedMs).padStart(6), bar, count].filter((part) => part !== '').join(' ');
  const line = [head, state.phase, ...(state.detail === undefined ? [] : [state.detail])].join(' · ');
  return line.length > columns ? `${line.slice(0, Math.max(0, columns - 1))}…` : line;
}

/** Starts a progress line; the first draw happens at once. */
export function startProgress(options: ProgressOptions, initial: ProgressState): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  const heartbeatMs = options.heartbeatMs ?? 30_000;
  const started = performance.now();
  let state = initial;
  let lastPlain = 0;
  let finished = false;
  const elapsed = (): number => performance.now() - started;
  const draw = (): void => {
    if (tty) {
      stream.write(`\r\x1b[2K${formatProgressLine(options.label, state, elapsed(), Math.max(40, (stream.columns || 100) - 1))}`);
    } else {
      lastPlain = performance.now();
      stream.write(`${formatProgressLine(options.label, { ...state, detail: undefined }, elapsed())}\n`);
    }
  };
  // unref: a forgotten progress line never keeps the process alive.
  const timer = setInterval(() => {
    if (tty) draw();
    else if (performance.now() - lastPlain >= heartbeatMs) draw();
  }, 1_000).unref();
  draw();
  return {
    update(next) {
      if (finished) return;
      const phaseChanged = next.phase !== state.phase;
      state = next;
      if (tty || phaseChanged) draw();
    },
    done(text) {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      const line = `[${options.label}] ${text} (${formatElapsed(elapsed())})`;
      stream.write(tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
    },
  };
}
