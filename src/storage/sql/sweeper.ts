export interface SweeperOptions {
  /** How often expired rows are deleted, milliseconds; 0 disables the timer. Default one minute. */
  sweepIntervalMs?: number;
  /** A sweep failed (database down): reported, retried at the next interval. */
  onSweepError?: (error: unknown) => void;
}

const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/**
 * Runs `sweep` every interval on an unref'd timer (it never keeps the process alive),
 * skipping a tick while the previous sweep is still running. Returns the stop function.
 */
export function startSweeper(sweep: () => Promise<unknown>, options: SweeperOptions): () => void {
  const interval = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  if (interval <= 0) return () => {};
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .catch((error: unknown) => options.onSweepError?.(error))
      .finally(() => {
        running = false;
      });
  }, interval);
  timer.unref();
  return () => clearInterval(timer);
}
