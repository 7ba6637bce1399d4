import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { migrateToLatest } from '../migrate.ts';
import type { StoresLogger } from '../open-stores.ts';
import type { Database } from '../schema.ts';

/** Where PGlite kept its files inside the data directory. */
export function embeddedDatabaseDir(dataDir: string): string {
  return join(dataDir, 'pglite');
}

/** The accounts tables in an order their foreign keys allow, each with its primary key (for paging). */
const TABLES: ReadonlyArray<readonly [keyof Database, readonly string[]]> = [
  ['accounts', ['id']],
  ['identities', ['appid', 'openid']],
  ['avatars', ['account_id']],
  ['consents', ['account_id', 'client_id']],
  ['account_artifacts', ['model', 'id']],
  ['account_deletions', ['id']],
  ['account_event_deliveries', ['id']],
];

/** Rows read and written at a time: a few thousand bound values per insert, far under SQLite's limit. */
const PAGE_ROWS = 200;

/**
 * Until 6 Dec 2026 the embedded setup kept its accounts in PGlite, under `<dataDir>/pglite`. The
 * first start of a later release copies them into accounts.sqlite, in one transaction (a crash
 * midway leaves the new file empty and the next start copies again), then renames the old directory
 * to `pglite.copied` and leaves it there for the operator to delete. Sessions and tokens are not
 * copied: they moved out of PGlite earlier (./database.ts), and what was left there was never read.
 *
 * PGlite is loaded only here, so a server that has nothing to copy never pays for it. On 6 Dec,
 * 100,000 accounts with 150,000 identities and 50,000 consents took 6 seconds to copy.
 */
export async function copyAccountsFromPglite(
  dataDir: string,
  accounts: Kysely<Database>,
  logger: StoresLogger,
): Promise<void> {
  const from = embeddedDatabaseDir(dataDir);
  if (!(await isDirectory(from))) return;
  // Accounts here already: the copy committed and the rename did not happen (a crash in between).
  const copied = await accounts.selectFrom('accounts').select('id').limit(1).executeTakeFirst();
  if (!copied) {
    const { openEmbeddedDatabase } = await import('../embedded.ts');
    const pglite = await openEmbeddedDatabase(dataDir);
    try {
      // A directory of an older release: its schema as the copy expects it.
      await migrateToLatest(pglite);
      const rows = await accounts.transaction().execute(async (trx) => {
        const counts: Record<string, number> = {};
        for (const [table, key] of TABLES) counts[table] = await copyTable(pglite, trx, table, key);
        return counts;
      });
      logger.info({ from, rows }, 'copied the accounts of an earlier release from PGlite to accounts.sqlite');
    } finally {
      await pglite.destroy();
    }
  }
  await rename(from, `${from}.copied`);
  logger.info(
    { directory: `${from}.copied` },
    'the earlier PGlite directory is no longer used; delete it once the server runs as it should',
  );
}

/** Copies one table, page by page in key order (each page starts after the last key seen). */
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

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
