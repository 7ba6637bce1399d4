import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import { PreparedPGliteDialect } from './pglite-driver.ts';
import type { Database } from './schema.ts';
import { startSweeper } from './sql/sweeper.ts';

/** Where PGlite keeps its files inside the data directory. */
export function embeddedDatabaseDir(dataDir: string): string {
  return join(dataDir, 'pglite');
}

/**
 * A Kysely over PGlite (PostgreSQL in WebAssembly) persisted under `<dataDir>/pglite`,
 * for single-instance deployments without a database server.
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

/** PostgreSQL's own checkpoint_timeout: how often the embedded database is checkpointed. */
export const EMBEDDED_CHECKPOINT_INTERVAL_MS = 5 * 60_000;

/**
 * Checkpoints the embedded database on a timer, as PostgreSQL's checkpointer process does. PGlite
 * runs PostgreSQL as a single backend without that process, and a single backend never checkpoints
 * for the size of its write-ahead log either (PostgreSQL asks for that checkpoint only under a
 * postmaster), so until the server stops the log only grows: about half a kilobyte per login, on
 * disk and in what a restart after a crash replays (6 Dec: 65 MB after 100,000 logins, 0.73 s to
 * open again against 0.3 after a checkpoint, which took 9 ms; checkpointed every 25,000 logins, the
 * log stayed at 33 MB over 300,000). Returns the stop function.
 */
export function startEmbeddedCheckpoints(
  db: Kysely<Database>,
  options: { intervalMs?: number | undefined; onError: (error: unknown) => void },
): () => void {
  return startSweeper(async () => void (await sql`checkpoint`.execute(db)), {
    sweepIntervalMs: options.intervalMs ?? EMBEDDED_CHECKPOINT_INTERVAL_MS,
    onSweepError: options.onError,
  });
}
