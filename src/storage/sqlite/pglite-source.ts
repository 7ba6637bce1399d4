import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Kysely, PGliteDialect } from 'kysely';
import type { Database } from '../schema.ts';

/** Where PGlite kept its files inside the data directory. */
export function pgliteDirectory(dataDir: string): string {
  return join(dataDir, 'pglite');
}

/**
 * A Kysely over PGlite (PostgreSQL in WebAssembly) persisted under `<dataDir>/pglite`: where the
 * embedded setup kept its accounts until 6 Dec 2026. Now opened only to copy them into
 * accounts.sqlite (./from-pglite.ts), and by the tests as a PostgreSQL without a server: kysely's
 * own PGlite dialect does (the prepared-statement driver it had while logins ran on it is gone).
 *
 * PGlite has one connection. Kysely's
 * PGlite adapter declares that, so Kysely serialises every query and holds the connection for a
 * whole transaction: a concurrent request waits rather than running inside someone else's
 * transaction (test/storage/embedded.test.ts pins this). The flip side: inside
 * `db.transaction().execute(trx => ...)` use only `trx`; a query on `db` there waits for the
 * transaction that waits for it.
 *
 * Only one process may open a data directory at a time.
 */
export async function openPgliteDatabase(dataDir: string): Promise<Kysely<Database>> {
  const directory = pgliteDirectory(dataDir);
  // Created private (openStores tightens an existing data directory: ./private-directory.ts).
  await mkdir(directory, { recursive: true, mode: 0o700 });
  // Loaded here only: a server with nothing to copy never pays for PGlite.
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create(directory, {
    // PostgreSQL's default buffer pool (128 MB) is resident in the WebAssembly memory, which never
    // shrinks. 32 MB holds a small deployment's working set (pages beyond it are read from the
    // files); on 5 Dec the server's RSS after 2,000 logins went from 606 to 419 MB, logins as fast.
    startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=32MB'],
  });
  return new Kysely<Database>({ dialect: new PGliteDialect({ pglite }) });
}
