import { vi } from 'vitest';

/**
 * How long `work` takes on vitest's fake timers: they are advanced a step at a time until it
 * settles. `onStep` moves a clock of the caller's own along with them.
 */
export async function fakeTimeTaken(
  work: Promise<unknown>,
  onStep?: (ms: number) => void,
  stepMs = 100,
): Promise<number> {
  let settled = false;
  const done = () => {
    settled = true;
  };
  work.then(done, done);
  let elapsed = 0;
  while (!settled) {
    await vi.advanceTimersByTimeAsync(stepMs);
    elapsed += stepMs;
    onStep?.(stepMs);
  }
  return elapsed;
}
