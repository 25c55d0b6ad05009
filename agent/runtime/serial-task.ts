/**
 * Runs an async task so that calls never overlap and bursts collapse: a trigger while
 * the task runs schedules exactly one more run. Level-triggered work (recompute from
 * current state, then apply) needs nothing more.
 */
export interface SerialTask {
  /** Requests a run; resolves when a run that started after this call has finished. */
  trigger(): Promise<void>;
  /** Resolves when no run is pending. */
  idle(): Promise<void>;
}

export function serialTask(run: () => Promise<void>, onError: (error: unknown) => void): SerialTask {
  let current: Promise<void> = Promise.resolve();
  let pending: Promise<void> | undefined;
  const trigger = (): Promise<void> => {
    if (pending !== undefined) return pending;
    pending = current.then(async () => {
      pending = undefined;
      try {
        await run();
      } catch (error) {
        onError(error);
      }
    });
    current = pending;
    return pending;
  };
  return { trigger, idle: () => current };
}
