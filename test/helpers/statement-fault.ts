import { type Kysely, sql } from 'kysely';
import { isSqlite } from '../../src/storage/dialect.ts';
import type { Database } from '../../src/storage/schema.ts';

export interface StatementFault {
  table: 'accounts' | 'identities' | 'consents';
  on: 'insert' | 'update';
  /**
   * 'refuse': the statement fails with an error, as a database refusing it would (a bug's kind of
   * failure, not an outage). 'drop': the server ends the statement's connection, as a restart or a
   * network cutting it would (PostgreSQL only; pg then says "Connection terminated unexpectedly").
   */
  fault: 'refuse' | 'drop';
}

/**
 * Runs `action` while every `on` statement on `table` fails as `fault` says: a trigger in the
 * bridge's own database (its test database, or its embedded SQLite file), dropped again afterwards
 * whatever happened. The statement's transaction is rolled back either way.
 */
export async function whileStatementsFail<T>(
  db: Kysely<Database>,
  { table, on, fault }: StatementFault,
  action: () => Promise<T>,
): Promise<T> {
  const name = `fail_${on}_${table}`;
  if (isSqlite(db)) {
    if (fault === 'drop') throw new Error('an embedded database has no connection to drop');
    await sql`create trigger ${sql.raw(name)} before ${sql.raw(on)} on ${sql.table(table)}
      begin select raise(abort, 'the statement is refused (test)'); end`.execute(db);
  } else {
    const body =
      fault === 'drop'
        ? 'begin perform pg_terminate_backend(pg_backend_pid()); return null; end'
        : "begin raise exception 'the statement is refused (test)'; end";
    await sql`create function ${sql.raw(name)}() returns trigger language plpgsql as ${sql.raw(`$$ ${body} $$`)}`.execute(
      db,
    );
    await sql`create trigger ${sql.raw(name)} before ${sql.raw(on)} on ${sql.table(table)}
      for each statement execute function ${sql.raw(name)}()`.execute(db);
  }
  try {
    return await action();
  } finally {
    if (isSqlite(db)) await sql`drop trigger ${sql.raw(name)}`.execute(db);
    else {
      await sql`drop trigger ${sql.raw(name)} on ${sql.table(table)}`.execute(db);
      await sql`drop function ${sql.raw(name)}()`.execute(db);
    }
  }
}
