import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.ts';

/** A table to copy and its primary key's columns (the copy pages by them). */
export type CopiedTable = readonly [keyof Database, readonly string[]];

/** The accounts tables, in an order their foreign keys allow. */
export const ACCOUNT_TABLES: readonly CopiedTable[] = [
  ['accounts', ['id']],
  ['identities', ['appid', 'openid']],
  ['avatars', ['account_id']],
  ['consents', ['account_id', 'client_id']],
  ['account_deletions', ['id']],
  ['account_event_deliveries', ['id']],
];

/**
 * The index of oidc-provider's grants and sessions by account (accounts/artifact-index.ts): copied
 * only where those artifacts stay reachable.
 */
export const ARTIFACT_INDEX: CopiedTable = ['account_artifacts', ['model', 'id']];

/** Rows read and written at a time: a few thousand bound values per insert, far under SQLite's limit. */
const PAGE_ROWS = 200;

/**
 * Copies each table from one accounts database to another (PostgreSQL, PGlite or the embedded
 * SQLite file: both sides give and take the same values, see sqlite/kysely-dialect.ts), row for
 * row with every column. Run it inside a transaction of `to` so that a failure leaves nothing.
 * Returns the rows copied by table.
 */
export async function copyTables(
  from: Kysely<Database>,
  to: Kysely<Database>,
  tables: readonly CopiedTable[],
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const [table, key] of tables) counts[table] = await copyTable(from, to, table, key);
  return counts;
}

/** One table, page by page in key order (each page starts after the last key seen). */
async function copyTable(
  from: Kysely<Database>,
  to: Kysely<Database>,
  table: keyof Database,
  key: readonly string[],
): Promise<number> {
  const columns = sql.join(key.map((column) => sql.ref(column)));
  let total = 0;
  let last: unknown[] | undefined;
  for (;;) {
    const after = last ? sql`where (${columns}) > (${sql.join(last)})` : sql``;
    const { rows } = await sql<Record<string, unknown>>`
      select * from ${sql.table(table)} ${after} order by ${columns} limit ${PAGE_ROWS}
    `.execute(from);
    const end = rows.at(-1);
    if (!end) return total;
    await to
      .insertInto(table)
      .values(rows as never)
      .execute();
    total += rows.length;
    last = key.map((column) => end[column]);
  }
}
