import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/**
 * Opens (creating when absent) one of the embedded setup's SQLite files, brings its schema up to
 * date and keeps the file locked to this process until it is closed.
 *
 * - Exclusive locking: the embedded setup admits one process per data directory. A second server
 *   (or the delete-account command beside a running one) is refused with a message saying so. It
 *   also spares SQLite its shared-memory index and the file locking around every statement.
 * - Write-ahead log with synchronous=NORMAL: a commit is not flushed to the disk on its own, the
 *   log is at each checkpoint (every `checkpointPages` pages written, by default SQLite's 1,000;
 *   the checkpoint and its flush hold the event loop meanwhile). A crash of the process loses
 *   no commit (the artifacts file commits in groups, before answers: ./write-batch.ts); a power
 *   cut can lose the commits since the last checkpoint, never the file's
 *   consistency. (synchronous=FULL would flush at every commit, and node:sqlite's calls are
 *   synchronous: the whole server would wait for the disk at every login.)
 * - Foreign keys are enforced (SQLite leaves them off unless asked, per connection).
 * - secure_delete: what a statement deletes is overwritten with zeros, not merely marked free, so a
 *   deleted account's profile, phone number and tokens do not stay readable in the file until
 *   SQLite happens to reuse their pages (nor in a backup of `dataDir`). The write-ahead log still
 *   holds the pages as they were until a checkpoint truncates it: `scrubWal`.
 * - `schema` is the schema by version (PRAGMA user_version): append a version to change it, never
 *   edit one that has shipped.
 */
export async function openSqliteFile(
  file: string,
  schema: readonly string[],
  options: { checkpointPages?: number } = {},
): Promise<DatabaseSync> {
  // Created private (openStores tightens an existing data directory: ../private-directory.ts).
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const database = new DatabaseSync(file);
  try {
    database.exec(`pragma locking_mode = exclusive;
      pragma journal_mode = wal;
      pragma synchronous = normal;
      pragma foreign_keys = on;
      pragma secure_delete = on;
      pragma wal_autocheckpoint = ${options.checkpointPages ?? DEFAULT_CHECKPOINT_PAGES};`);
    // An exclusive transaction takes the lock, and the locking mode keeps it after the commit.
    database.exec('begin exclusive; commit');
    migrate(database, file, schema);
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

/**
 * Copies the write-ahead log into the file and truncates it to nothing: the log keeps every page
 * as it was before each change until its frames are written over, so after an account's deletion
 * its rows would stay readable there. Holds the event loop while it copies (at most the log's
 * size: `checkpointPages` pages), which a deletion, rare, can afford.
 */
export function scrubWal(database: DatabaseSync): void {
  database.exec('pragma wal_checkpoint(truncate)');
}

/** SQLite's own default: the log is copied into the file (and flushed) every 1,000 pages written. */
const DEFAULT_CHECKPOINT_PAGES = 1_000;

/** SQLITE_BUSY: another connection holds the file's lock. */
function isLocked(error: unknown): boolean {
  return (error as { errcode?: unknown } | null)?.errcode === 5;
}

function migrate(database: DatabaseSync, file: string, schema: readonly string[]): void {
  const current = Number(database.prepare('pragma user_version').get()?.user_version ?? 0);
  if (current > schema.length) {
    throw new Error(
      `${file} has schema version ${current}, newer than this server's ${schema.length}: it was written by a newer release`,
    );
  }
  for (let version = current; version < schema.length; version++) {
    database.exec('begin immediate');
    try {
      database.exec(schema[version] as string);
      database.exec(`pragma user_version = ${version + 1}`);
      database.exec('commit');
    } catch (error) {
      database.exec('rollback');
      throw error;
    }
  }
}
