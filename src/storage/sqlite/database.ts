import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/** The embedded setup's file for oidc-provider artifacts and short-lived entries, in the data directory. */
export function embeddedArtifactsFile(dataDir: string): string {
  return join(dataDir, 'artifacts.sqlite');
}

/**
 * The schema, by version (PRAGMA user_version). Times are milliseconds since the epoch; payloads
 * and values are JSON text. Append a version to change it; never edit one that has shipped.
 */
const SCHEMA: readonly string[] = [
  `create table oidc_artifacts (
     model text not null,
     id text not null,
     payload text not null,
     grant_id text,
     uid text,
     user_code text,
     expires_at integer,
     consumed_at integer,
     primary key (model, id)
   );
   create index oidc_artifacts_grant_id on oidc_artifacts (grant_id) where grant_id is not null;
   create index oidc_artifacts_uid on oidc_artifacts (uid) where uid is not null;
   create index oidc_artifacts_user_code on oidc_artifacts (user_code) where user_code is not null;
   create index oidc_artifacts_expires_at on oidc_artifacts (expires_at) where expires_at is not null;
   create table kv_entries (
     key text primary key,
     value text not null,
     expires_at integer not null
   );
   create index kv_entries_expires_at on kv_entries (expires_at);`,
];

/**
 * Opens (creating when absent) the SQLite file that holds the embedded setup's oidc-provider
 * artifacts and key-value entries, brings its schema up to date, and keeps the file locked to this
 * process until it is closed.
 *
 * Why SQLite (Node's built-in node:sqlite) and not the accounts' PGlite: these are a login's many
 * small reads and writes (about 15 per login). On PGlite each statement cost 70 to 130 microseconds
 * of the server's core (PostgreSQL in WebAssembly): the bare engine's embedded login took 3.8 ms of
 * CPU then and 1.6 to 2.0 now. On SQLite a write costs about 20 and a read 3 on a quiet core (6 Dec,
 * bench/FINDINGS.md).
 *
 * - Exclusive locking: the embedded setup admits one process per data directory (PGlite would let
 *   a second one in and both would write its files). The lock is taken here, before the server
 *   opens PGlite, so a second server (or the delete-account command beside a running one) is
 *   refused with a message saying so. It also spares SQLite its shared-memory index and the file
 *   locking around every statement.
 * - Write-ahead log with synchronous=NORMAL: a commit is not flushed to the disk on its own, the
 *   log is at each checkpoint (every 1,000 pages written, SQLite's default; the flush holds the
 *   event loop that long). A crash of the process loses nothing; a power cut can lose the last
 *   commits (sessions and login state: people log in again), never the file's consistency.
 * - Calls are synchronous, so each statement is atomic with respect to every other request.
 */
export async function openArtifactsDatabase(dataDir: string): Promise<DatabaseSync> {
  // Created private (openStores tightens an existing data directory: ../private-directory.ts).
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = embeddedArtifactsFile(dataDir);
  const database = new DatabaseSync(file);
  try {
    database.exec(`pragma locking_mode = exclusive;
      pragma journal_mode = wal;
      pragma synchronous = normal;`);
    // An exclusive transaction takes the lock, and the locking mode keeps it after the commit.
    database.exec('begin exclusive; commit');
    migrate(database, file);
    return database;
  } catch (error) {
    database.close();
    if (isLocked(error)) {
      throw new Error(
        `${file} is open in another process: the embedded store admits one process per data directory (dataDir)`,
      );
    }
    throw error;
  }
}

/** SQLITE_BUSY: another connection holds the file's lock. */
function isLocked(error: unknown): boolean {
  return (error as { errcode?: unknown } | null)?.errcode === 5;
}

function migrate(database: DatabaseSync, file: string): void {
  const current = Number(database.prepare('pragma user_version').get()?.user_version ?? 0);
  if (current > SCHEMA.length) {
    throw new Error(
      `${file} has schema version ${current}, newer than this server's ${SCHEMA.length}: it was written by a newer release`,
    );
  }
  for (let version = current; version < SCHEMA.length; version++) {
    database.exec('begin immediate');
    try {
      database.exec(SCHEMA[version] as string);
      database.exec(`pragma user_version = ${version + 1}`);
      database.exec('commit');
    } catch (error) {
      database.exec('rollback');
      throw error;
    }
  }
}
