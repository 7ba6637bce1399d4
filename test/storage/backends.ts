import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll } from 'vitest';
import { openEmbeddedDatabase } from '../../src/storage/embedded.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import { createPostgresDatabase } from '../../src/storage/postgres.ts';
import type { Database } from '../../src/storage/schema.ts';
import { openAccountsDatabase } from '../../src/storage/sqlite/accounts-database.ts';
import { openArtifactsDatabase } from '../../src/storage/sqlite/database.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { createTestRedis } from '../helpers/redis.ts';

export interface SqlBackend {
  db: Kysely<Database>;
  close(): Promise<void>;
}

/** A migrated database of its own on the test PostgreSQL server, dropped on close. */
export async function openPostgresBackend(): Promise<SqlBackend> {
  const database = await createTestDatabase();
  const db = createPostgresDatabase(database.url);
  await migrateToLatest(db);
  return {
    db,
    async close() {
      await db.destroy();
      await database.drop();
    },
  };
}

/**
 * Opens a backend before the suite's tests and closes it after them: `use` receives it once open
 * (a suite keeps `backend.db` in a variable of its own).
 */
export function useSqlBackend(open: () => Promise<SqlBackend>, use: (backend: SqlBackend) => void): void {
  let backend: SqlBackend | undefined;
  beforeAll(async () => {
    backend = await open();
    use(backend);
  });
  afterAll(async () => {
    await backend?.close();
  });
}

/** A migrated PGlite in a temporary directory, deleted on close. */
export function openPgliteBackend(): Promise<SqlBackend & { dataDir: string }> {
  return inTemporaryDirectory('wob-pglite-', async (dataDir) => {
    const db = await openEmbeddedDatabase(dataDir);
    await migrateToLatest(db);
    return db;
  });
}

/** The embedded setup's accounts file (accounts.sqlite) in a temporary directory, deleted on close. */
export function openSqliteAccountsBackend(): Promise<SqlBackend & { dataDir: string }> {
  return inTemporaryDirectory('wob-sqlite-accounts-', openAccountsDatabase);
}

async function inTemporaryDirectory(
  prefix: string,
  open: (dataDir: string) => Promise<Kysely<Database>>,
): Promise<SqlBackend & { dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  const db = await open(dataDir);
  return {
    db,
    dataDir,
    async close() {
      await db.destroy();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RedisBackend {
  redis: Redis;
  prefix: string;
  close(): Promise<void>;
}

/** A connection with auto-pipelining (as in production) and a key prefix of its own. */
export async function openRedisBackend(): Promise<RedisBackend> {
  const test = await createTestRedis();
  const redis = new Redis(test.url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  return {
    redis,
    prefix: test.prefix,
    async close() {
      await test.cleanup();
      redis.disconnect();
    },
  };
}

/** The embedded setup's SQLite artifacts file in a temporary directory, deleted on close. */
export interface SqliteBackend {
  database: DatabaseSync;
  dataDir: string;
  close(): Promise<void>;
}

export async function openSqliteBackend(): Promise<SqliteBackend> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wob-sqlite-'));
  const backend: SqliteBackend = {
    database: await openArtifactsDatabase(dataDir),
    dataDir,
    async close() {
      // A test may have swapped the handle (reopening the file): close whichever is current.
      if (backend.database.isOpen) backend.database.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return backend;
}
