import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';

export interface SweeperOptions {
  /** How often expired rows are deleted, milliseconds; 0 disables the timer. Default one minute. */
  sweepIntervalMs?: number;
  /** A sweep failed (database down): reported, retried at the next interval. */
  onSweepError?: (error: unknown) => void;
}

/** Deletes the table's expired rows; resolves to how many. PostgreSQL's autovacuum reclaims their space. */
export async function sweepExpired(
  db: Kysely<Database>,
  table: 'oidc_artifacts' | 'kv_entries' | 'account_artifacts',
  at: Date,
): Promise<number> {
  const result = await db.deleteFrom(table).where('expires_at', '<=', at).executeTakeFirst();
  return Number(result.numDeletedRows);
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
