import { type Kysely, sql } from 'kysely';
import { isSqlite } from '../../src/storage/dialect.ts';
import type { Database } from '../../src/storage/schema.ts';

/**
 * Runs `action` while the account-event outbox (account_event_deliveries) refuses every insert, as
 * a database failing at that statement would: a trigger that raises, in the bridge's own database
 * (its test database, or its embedded SQLite file), dropped again afterwards whatever happened.
 */
export async function whileOutboxRefuses<T>(db: Kysely<Database>, action: () => Promise<T>): Promise<T> {
  if (isSqlite(db)) {
    await sql`create trigger refuse_outbox before insert on account_event_deliveries
      begin select raise(abort, 'the outbox refuses (test)'); end`.execute(db);
  } else {
    await sql`create function refuse_outbox() returns trigger language plpgsql as
      $$ begin raise exception 'the outbox refuses (test)'; end $$`.execute(db);
    await sql`create trigger refuse_outbox before insert on account_event_deliveries
      for each statement execute function refuse_outbox()`.execute(db);
  }
  try {
    return await action();
  } finally {
    if (isSqlite(db)) await sql`drop trigger refuse_outbox`.execute(db);
    else {
      await sql`drop trigger refuse_outbox on account_event_deliveries`.execute(db);
      await sql`drop function refuse_outbox()`.execute(db);
    }
  }
}
