import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import { Kysely, type SqliteDatabase, SqliteDialect, type SqliteStatement } from 'kysely';
import type { Database } from '../schema.ts';

/**
 * Statements kept prepared at once. The account queries are a few dozen fixed texts; the bound is
 * for texts that vary (a list of n values), whose oldest statements are dropped.
 */
const MAX_PREPARED = 256;

/**
 * Columns stored as 0/1 and read as booleans; columns stored as JSON text and read as arrays. By
 * name, as every table spells them: SQLite has no boolean or array type to tell them by.
 */
const BOOLEAN_COLUMNS = new Set(['phone_number_verified']);
const ARRAY_COLUMNS = new Set(['scopes']);

/**
 * A Kysely over one of the embedded setup's SQLite files (Node's built-in node:sqlite), giving the
 * account code the values it gets from PostgreSQL: times are stored as milliseconds since the
 * epoch (every `*_at` column) and read back as Dates, booleans as 0/1, text arrays as JSON.
 *
 * Kysely's SQLite driver runs one query at a time on the file's one connection and holds it for a
 * whole transaction, so a concurrent request waits rather than running inside someone else's
 * transaction. The flip side: inside `db.transaction().execute(trx => ...)` use only `trx`; a
 * query on `db` there waits for the transaction that waits for it.
 */
export function sqliteKysely(database: DatabaseSync): Kysely<Database> {
  return new SqliteKysely(new PreparedStatements(database));
}

/**
 * Runs `work` on the node:sqlite handle under a Kysely made by sqliteKysely, holding that Kysely's
 * one connection meanwhile (so no Kysely transaction is open on it, and none starts until `work`
 * returns): for code that runs its own prepared statements where Kysely's building of each query
 * costs more than SQLite's running of it. Undefined for any other Kysely.
 */
export function onSqliteConnection<T>(
  db: Kysely<Database>,
  work: (database: DatabaseSync) => T,
): Promise<T> | undefined {
  if (!(db instanceof SqliteKysely)) return undefined;
  const database = db.database;
  return db.connection().execute(async () => work(database));
}

/**
 * Closes the file at destroy() even when no query ran: Kysely closes a driver only once it has
 * been used, and an unused one would keep the file (and its lock) open.
 */
class SqliteKysely extends Kysely<Database> {
  readonly #statements: PreparedStatements;

  constructor(statements: PreparedStatements) {
    super({ dialect: new SqliteDialect({ database: statements }) });
    this.#statements = statements;
  }

  get database(): DatabaseSync {
    return this.#statements.database;
  }

  override async destroy(): Promise<void> {
    await super.destroy();
    this.#statements.close();
  }
}

/** What Kysely's SQLite driver asks of a database, over node:sqlite, with statements kept prepared. */
class PreparedStatements implements SqliteDatabase {
  readonly #database: DatabaseSync;
  readonly #prepared = new Map<string, SqliteStatement>();

  constructor(database: DatabaseSync) {
    this.#database = database;
  }

  get database(): DatabaseSync {
    return this.#database;
  }

  prepare(sql: string): SqliteStatement {
    let statement = this.#prepared.get(sql);
    if (!statement) {
      statement = converting(this.#database.prepare(sql));
      if (this.#prepared.size >= MAX_PREPARED) {
        const oldest = this.#prepared.keys().next().value as string;
        this.#prepared.delete(oldest);
      }
      this.#prepared.set(sql, statement);
    }
    return statement;
  }

  /** Idempotent: Kysely closes it too, when it was used. */
  close(): void {
    this.#prepared.clear();
    if (this.#database.isOpen) this.#database.close();
  }
}

function converting(statement: StatementSync): SqliteStatement {
  return {
    reader: statement.columns().length > 0,
    all: (parameters) => statement.all(...parameters.map(toSqlite)).map(fromSqlite),
    run: (parameters) => statement.run(...parameters.map(toSqlite)),
    *iterate(parameters) {
      for (const row of statement.iterate(...parameters.map(toSqlite))) yield fromSqlite(row);
    },
  };
}

/** Now, in SQLite's terms and as every time is stored there: milliseconds since the epoch. */
export const SQLITE_NOW_MS = `(cast(unixepoch('subsec') * 1000 as integer))`;

/** A value as SQLite stores it (see sqliteKysely). */
export function toSqlite(value: unknown): SQLInputValue {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (Array.isArray(value)) return JSON.stringify(value);
  return value as SQLInputValue;
}

/** A row as the account code reads it (times as Dates, booleans, arrays): see sqliteKysely. */
export function fromSqlite(row: Record<string, unknown>): Record<string, unknown> {
  const converted: Record<string, unknown> = {};
  for (const column in row) {
    const value = row[column];
    if (typeof value === 'number' && column.endsWith('_at')) converted[column] = new Date(value);
    else if (BOOLEAN_COLUMNS.has(column)) converted[column] = value === 1;
    else if (ARRAY_COLUMNS.has(column) && typeof value === 'string') converted[column] = JSON.parse(value);
    else converted[column] = value;
  }
  return converted;
}
