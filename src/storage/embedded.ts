import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { PreparedPGliteDialect } from './pglite-driver.ts';
import type { Database } from './schema.ts';
import { embeddedDatabaseDir } from './sqlite/from-pglite.ts';

/**
 * A Kysely over PGlite (PostgreSQL in WebAssembly) persisted under `<dataDir>/pglite`: where the
 * embedded setup kept its accounts until 6 Dec 2026. Now opened only to copy them into
 * accounts.sqlite (./sqlite/from-pglite.ts), and by the tests as a PostgreSQL without a server.
 *
 * Every statement is kept prepared (./pglite-driver.ts). PGlite has one connection. Kysely's
 * PGlite adapter declares that, so Kysely serialises every query and holds the connection for a
 * whole transaction: a concurrent request waits rather than running inside someone else's
 * transaction (test/storage/embedded.test.ts pins this). The flip side: inside
 * `db.transaction().execute(trx => ...)` use only `trx`; a query on `db` there waits for the
 * transaction that waits for it.
 *
 * Only one process may open a data directory at a time.
 */
export async function openEmbeddedDatabase(dataDir: string): Promise<Kysely<Database>> {
  const directory = embeddedDatabaseDir(dataDir);
  // Created private (openStores tightens an existing data directory: ./private-directory.ts).
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const pglite = await PGlite.create(directory, {
    // PostgreSQL's default buffer pool (128 MB) is resident in the WebAssembly memory, which never
    // shrinks. 32 MB holds a small deployment's working set (pages beyond it are read from the
    // files); on 5 Dec the server's RSS after 2,000 logins went from 606 to 419 MB, logins as fast.
    startParams: [...PGlite.defaultStartParams, '-c', 'shared_buffers=32MB'],
  });
  return new Kysely<Database>({ dialect: new PreparedPGliteDialect(pglite) });
}
