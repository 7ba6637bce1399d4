import { setImmediate as yieldToRequests } from 'node:timers/promises';
import type { WriteBatch } from './write-batch.ts';

/** Rows deleted per statement: each statement holds the server's one thread while it runs. */
const ROWS_PER_STATEMENT = 500;

/**
 * Deletes the table's rows expired at `at` (milliseconds), ROWS_PER_STATEMENT at a time with the event loop
 * let through between batches, so that a sweep after a busy hour never stalls the requests.
 * Resolves to how many. SQLite reuses the pages of deleted rows, so no vacuum is needed.
 */
export function sqliteSweeper(
  writes: WriteBatch,
  table: 'oidc_artifacts' | 'kv_entries',
): (at: number) => Promise<number> {
  const deleteSome = writes.prepare(
    `delete from ${table} where rowid in
      (select rowid from ${table} where expires_at <= ? limit ${ROWS_PER_STATEMENT})`,
  );
  return async (at) => {
    let total = 0;
    for (;;) {
      const deleted = Number(deleteSome.run(at).changes);
      total += deleted;
      if (deleted < ROWS_PER_STATEMENT) return total;
      await yieldToRequests();
    }
  };
}
