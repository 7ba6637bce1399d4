import { type Kysely, sql } from 'kysely';
import type { Database } from '../schema.ts';

export interface SweeperOptions {
  /** How often expired rows are deleted, milliseconds; 0 disables the timer. Default one minute. */
  sweepIntervalMs?: number;
  /** A sweep failed (database down): reported, retried at the next interval. */
  onSweepError?: (error: unknown) => void;
  /**
   * VACUUM ANALYZE the table after a sweep that deleted rows: for PGlite, which runs no
   * autovacuum. Without it the space of deleted rows is never reused (on 5 Dec a table filled
   * and emptied five times over took five times the space) and the planner's statistics stay
   * those of the empty table it started as. PostgreSQL's autovacuum does this itself.
   */
  vacuum?: boolean;
}

/** Deletes the table's expired rows (and vacuums it, when asked); resolves to how many. */
export async function sweepExpired(
  db: Kysely<Database>,
  table: 'oidc_artifacts' | 'kv_entries' | 'account_artifacts',
  at: Date,
  options: SweeperOptions,
): Promise<number> {
  const result = await db.deleteFrom(table).where('expires_at', '<=', at).executeTakeFirst();
  const deleted = Number(result.numDeletedRows);
  if (deleted > 0 && options.vacuum) await sql`vacuum analyze ${sql.table(table)}`.execute(db);
  return deleted;
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
