import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll } from 'vitest';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import { createPostgresDatabase } from '../../src/storage/postgres.ts';
import type { Database } from '../../src/storage/schema.ts';
import { openAccountsDatabase } from '../../src/storage/sqlite/accounts-database.ts';
import { openArtifactsDatabase } from '../../src/storage/sqlite/database.ts';
import { openPgliteDatabase } from '../../src/storage/sqlite/pglite-source.ts';
import { createWriteBatch, type WriteBatch } from '../../src/storage/sqlite/write-batch.ts';
import type { WeChatIdentity } from '../../src/upstream/wechat/types.ts';
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
    const db = await openPgliteDatabase(dataDir);
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

/**
 * The embedded setup's SQLite artifacts file in a temporary directory, deleted on close, with the
 * group commit its stores write through (a failed commit is thrown, failing the test).
 */
export interface SqliteBackend {
  database: DatabaseSync;
  writes: WriteBatch;
  dataDir: string;
  /** Commits, closes the file and opens it again, as a restarted server would. */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export async function openSqliteBackend(): Promise<SqliteBackend> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wob-sqlite-'));
  const open = async () => {
    const database = await openArtifactsDatabase(dataDir);
    const writes = createWriteBatch(database, {
      onFailure(error) {
        throw error;
      },
    });
    return { database, writes };
  };
  const shut = () => {
    if (!backend.database.isOpen) return;
    backend.writes.commit();
    backend.database.close();
  };
  const backend: SqliteBackend = {
    ...(await open()),
    dataDir,
    async reopen() {
      shut();
      Object.assign(backend, await open());
    },
    async close() {
      shut();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return backend;
}

/** A website login of the person with this unionid, as the connector hands it to linkIdentity. */
export function websiteLogin(
  unionid: string,
  overrides: Partial<WeChatIdentity> = {},
): WeChatIdentity & { unionid: string } {
  return {
    kind: 'website',
    appid: 'wx-website',
    openid: `openid-${randomUUID()}`,
    unionid,
    profile: { nickname: 'Alice', avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132' },
    snapshotUser: false,
    ...overrides,
  };
}
