import { type Kysely, type RawBuilder, SqliteIntrospector, sql, type Transaction } from 'kysely';
import type { Database } from './schema.ts';
import { SQLITE_NOW_MS } from './sqlite/kysely-dialect.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** The answer per Kysely (the introspector is made anew at each ask). */
const known = new WeakMap<Db, boolean>();

/**
 * Whether the accounts live in the embedded setup's SQLite file (./sqlite/accounts-database.ts)
 * rather than in PostgreSQL. The few statements written in PostgreSQL's own terms (writable CTEs,
 * arrays, row locks, server-side time arithmetic) take a second form where this is true; everything
 * else is the same Kysely for both.
 */
export function isSqlite(db: Db): boolean {
  let sqlite = known.get(db);
  if (sqlite === undefined) {
    sqlite = db.introspection instanceof SqliteIntrospector;
    known.set(db, sqlite);
  }
  return sqlite;
}

/**
 * The database's clock, `ms` milliseconds ahead: for times that several instances compare (leases,
 * retries), read where they are stored rather than from each instance's own clock.
 */
export function databaseNowPlus(db: Db, ms: number): RawBuilder<Date> {
  return isSqlite(db)
    ? sql<Date>`(${sql.raw(SQLITE_NOW_MS)} + ${ms})`
    : sql<Date>`now() + make_interval(secs => ${ms / 1000})`;
}
