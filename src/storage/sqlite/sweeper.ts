import type { DatabaseSync } from 'node:sqlite';
import { setImmediate as yieldToRequests } from 'node:timers/promises';

/** Rows deleted per statement: each statement holds the server's one thread while it runs. */
const BATCH = 500;

/**
 * Deletes the table's rows expired at `at` (milliseconds), BATCH at a time with the event loop
 * let through between batches, so that a sweep after a busy hour never stalls the requests.
 * Resolves to how many. SQLite reuses the pages of deleted rows, so no vacuum is needed.
 */
export function sqliteSweeper(
  database: DatabaseSync,
  table: 'oidc_artifacts' | 'kv_entries',
): (at: number) => Promise<number> {
  const batch = database.prepare(
    `delete from ${table} where rowid in
      (select rowid from ${table} where expires_at <= ? limit ${BATCH})`,
  );
  return async (at) => {
    let total = 0;
    for (;;) {
      const deleted = Number(batch.run(at).changes);
      total += deleted;
      if (deleted < BATCH) return total;
      await yieldToRequests();
    }
  };
}
