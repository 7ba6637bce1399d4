import { rename, stat } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import { ACCOUNT_TABLES, ARTIFACT_INDEX, copyTables } from '../copy-tables.ts';
import { migrateToLatest } from '../migrate.ts';
import type { StoresLogger } from '../open-stores.ts';
import type { Database } from '../schema.ts';
import { openPgliteDatabase, pgliteDirectory } from './pglite-source.ts';

/**
 * Until 6 Dec 2026 the embedded setup kept its accounts in PGlite, under `<dataDir>/pglite`. The
 * first start of a later release copies them into accounts.sqlite, in one transaction (a crash
 * midway leaves the new file empty and the next start copies again), then renames the old directory
 * to `pglite.copied` and leaves it there for the operator to delete. Sessions and tokens are not
 * copied: they moved out of PGlite earlier (./database.ts), and what was left there was never read.
 *
 * PGlite is loaded only when there is a directory to copy (./pglite-source.ts), so a server that
 * has nothing to copy never pays for it. On 6 Dec, 100,000 accounts with 150,000 identities and
 * 50,000 consents took 6 seconds to copy (through a prepared-statement driver since removed).
 */
export async function copyAccountsFromPglite(
  dataDir: string,
  accounts: Kysely<Database>,
  logger: StoresLogger,
): Promise<void> {
  const from = pgliteDirectory(dataDir);
  if (!(await isDirectory(from))) return;
  // Accounts here already: the copy committed and the rename did not happen (a crash in between).
  const copied = await accounts.selectFrom('accounts').select('id').limit(1).executeTakeFirst();
  if (!copied) {
    const pglite = await openPgliteDatabase(dataDir);
    try {
      // A directory of an older release: its schema as the copy expects it.
      await migrateToLatest(pglite);
      // The grant and session index too: those artifacts stay where they were (artifacts.sqlite).
      const rows = await accounts
        .transaction()
        .execute((trx) => copyTables(pglite, trx, [...ACCOUNT_TABLES, ARTIFACT_INDEX]));
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

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
