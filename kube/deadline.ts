/**
 * Runs `work` with a signal that aborts when `outer` does or after `ms`, whichever is first,
 * and clears both when the work settles. Not AbortSignal.any + AbortSignal.timeout: their
 * timer fires (and builds a DOMException) `ms` after every call, answered or not, and each
 * call leaves a dependant on the outer signal until it is collected — most of an idle
 * process's work when it renews a lease every few seconds.
 */
export async function withDeadline<T>(
  outer: AbortSignal | undefined,
  ms: number,
  timeoutMessage: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(timeoutMessage)), ms);
  const onAbort = (): void => deadline.abort(outer?.reason);
  if (outer?.aborted === true) onAbort();
  else outer?.addEventListener('abort', onAbort, { once: true });
  try {
    return await work(deadline.signal);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}
