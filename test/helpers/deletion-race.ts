import { setTimeout as pause } from 'node:timers/promises';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../../src/storage/schema.ts';

/**
 * A login racing the deletion of its account, on PostgreSQL, without timing: deletes the account as
 * deleteAccount's transaction does (its identities, then the account row) and, before committing,
 * starts `work` and waits until PostgreSQL shows it blocked behind that transaction. The work has
 * then read the account as it was (the deletion is not committed yet) and waits for the deletion's
 * row locks to write; it goes on once the deletion commits. Returns the work's outcome.
 */
export async function deletedWhileRunning<T>(
  db: Kysely<Database>,
  accountId: string,
  work: () => Promise<T>,
): Promise<T> {
  let running: Promise<T> | undefined;
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('identities').where('account_id', '=', accountId).execute();
    await trx.deleteFrom('accounts').where('id', '=', accountId).execute();
    running = work();
    // Observed even if the wait below throws, so that no rejection goes unhandled.
    running.catch(() => undefined);
    await untilSomeoneWaitsFor(trx);
  });
  return running as Promise<T>;
}

/**
 * Polls PostgreSQL until a session waits for a lock this transaction holds. pg_locks, not
 * pg_stat_activity: the latter is read once per transaction, and this one stays open while it polls.
 */
async function untilSomeoneWaitsFor(trx: Transaction<Database>): Promise<void> {
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const { rows } = await sql<{ waiting: boolean }>`
      select exists (
        select 1 from pg_locks where not granted and pg_backend_pid() = any (pg_blocking_pids(pid))
      ) as waiting`.execute(trx);
    if (rows[0]?.waiting) return;
    await pause(10);
  }
  throw new Error('nothing waited for the deletion: the work did not reach the account before it');
}
