import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { Redis } from 'ioredis';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openEmbeddedDatabase } from '../../src/storage/embedded.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import { openStores, type StoresLogger } from '../../src/storage/open-stores.ts';
import type { Database } from '../../src/storage/schema.ts';
import { embeddedArtifactsFile } from '../../src/storage/sqlite/database.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { createTestRedis, scanKeys } from '../helpers/redis.ts';
import { serviceAvailable } from '../helpers/services.ts';

const [postgres, redis] = await Promise.all([serviceAvailable('postgres'), serviceAvailable('redis')]);

function recordingLogger(): StoresLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (o, msg) => void lines.push(JSON.stringify({ ...o, msg })),
    warn: (o, msg) => void lines.push(JSON.stringify({ ...o, msg })),
  };
}

/** The same URL with a password in it (trust auth ignores it), to prove it is never logged. */
function withPassword(url: string, password: string): string {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
}

describe('openStores without URLs', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wob-stores-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('falls back to PGlite for accounts and a SQLite file for artifacts when no URL is given', async () => {
    const stores = await openStores({ redisKeyPrefix: 'unused:', dataDir, logger: recordingLogger() });
    try {
      expect(stores.kinds).toEqual({ accounts: 'embedded', artifacts: 'embedded' });
      const jti = randomUUID();
      await stores.oidcAdapter('Session').upsert(jti, { jti, uid: 'u' }, 60);
      await stores.kv.put('k', 'v', 60);
      const file = stores.sqlite as DatabaseSync;
      expect(file.location()).toBe(embeddedArtifactsFile(dataDir));
      expect(file.prepare('select id from oidc_artifacts').all()).toEqual([{ id: jti }]);
      expect(file.prepare('select key from kv_entries').all()).toEqual([{ key: 'k' }]);
      expect(await stores.db.selectFrom('oidc_artifacts').select('id').execute()).toEqual([]);
      expect(await stores.kv.take('k')).toBe('v');
      expect(await stores.ping()).toEqual({ database: true, cache: true });
    } finally {
      await stores.close();
    }
  });

  it('refuses a second server on the same data directory before it opens PGlite', async () => {
    const stores = await openStores({ redisKeyPrefix: 'unused:', dataDir, logger: recordingLogger() });
    try {
      await expect(
        openStores({ redisKeyPrefix: 'unused:', dataDir, logger: recordingLogger() }),
      ).rejects.toThrow('the embedded store admits one process per data directory');
      expect(await stores.ping()).toEqual({ database: true, cache: true });
    } finally {
      await stores.close();
    }
  });

  it('deletes the artifacts an earlier release kept in PGlite', async () => {
    const db = await openEmbeddedDatabase(dataDir);
    try {
      await migrateToLatest(db);
      await db
        .insertInto('oidc_artifacts')
        .values({ model: 'Session', id: 'old', payload: JSON.stringify({ accountId: 'someone' }) })
        .execute();
      await db
        .insertInto('kv_entries')
        .values({ key: 'old', value: JSON.stringify(1), expires_at: new Date(Date.now() + 60_000) })
        .execute();
    } finally {
      await db.destroy();
    }
    const logger = recordingLogger();
    const stores = await openStores({ redisKeyPrefix: 'unused:', dataDir, logger });
    try {
      expect(await stores.db.selectFrom('oidc_artifacts').select('id').execute()).toEqual([]);
      expect(await stores.db.selectFrom('kv_entries').select('key').execute()).toEqual([]);
      expect(logger.lines.join('\n')).toContain('"rows":2');
    } finally {
      await stores.close();
    }
  });

  it('checkpoints the embedded database on a timer, which PGlite never does by itself', async () => {
    const dir = join(dataDir, 'checkpointed');
    // Where the last checkpoint is (pg_stat_checkpointer counts none in a single backend).
    const lastCheckpoint = async (db: Kysely<Database>) =>
      (await sql<{ lsn: string }>`select checkpoint_lsn as lsn from pg_control_checkpoint()`.execute(db))
        .rows[0]?.lsn;
    const write = (db: Kysely<Database>, key: string) =>
      db
        .insertInto('kv_entries')
        .values({ key, value: '"v"', expires_at: new Date(Date.now() + 60_000) })
        .execute();

    const open = (checkpointIntervalMs: number) =>
      openStores({
        redisKeyPrefix: 'unused:',
        dataDir: dir,
        logger: recordingLogger(),
        checkpointIntervalMs,
      });

    // Without the timer, writes never bring a checkpoint about (a single backend does not ask for one).
    const quiet = await open(0);
    try {
      const before = await lastCheckpoint(quiet.db);
      for (let i = 0; i < 50; i++) await write(quiet.db, `quiet:${i}`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await lastCheckpoint(quiet.db)).toBe(before);
    } finally {
      await quiet.close();
    }

    const stores = await open(50);
    try {
      const before = await lastCheckpoint(stores.db);
      await write(stores.db, 'timed');
      await vi.waitFor(async () => expect(await lastCheckpoint(stores.db)).not.toBe(before), {
        timeout: 5_000,
        interval: 50,
      });
    } finally {
      await stores.close();
    }
  });

  it('resolves ping to false after close instead of throwing, and closes only once', async () => {
    const stores = await openStores({ redisKeyPrefix: 'unused:', dataDir, logger: recordingLogger() });
    await stores.close();
    await stores.close();
    expect(await stores.ping()).toEqual({ database: false, cache: false });
  });
});

describe.skipIf(!postgres || !redis)('openStores with PostgreSQL and Redis', () => {
  let dataDir: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let testRedis: Awaited<ReturnType<typeof createTestRedis>>;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wob-stores-'));
    [database, testRedis] = await Promise.all([createTestDatabase(), createTestRedis()]);
  });
  afterAll(async () => {
    await Promise.all([
      database?.drop(),
      testRedis?.cleanup(),
      rm(dataDir, { recursive: true, force: true }),
    ]);
  });

  it('keeps accounts in PostgreSQL and artifacts and kv under the Redis prefix', async () => {
    const logger = recordingLogger();
    const stores = await openStores({
      databaseUrl: database.url,
      redisUrl: testRedis.url,
      redisKeyPrefix: testRedis.prefix,
      dataDir,
      logger,
    });
    try {
      expect(stores.kinds).toEqual({ accounts: 'postgres', artifacts: 'redis' });
      const jti = randomUUID();
      await stores.oidcAdapter('AccessToken').upsert(jti, { jti }, 60);
      await stores.kv.put('state', { s: 1 }, 60);
      expect(await stores.oidcAdapter('AccessToken').find(jti)).toEqual({ jti });

      const probe = new Redis(testRedis.url);
      try {
        expect((await scanKeys(probe, testRedis.prefix)).sort()).toEqual(
          [`${testRedis.prefix}kv:state`, `${testRedis.prefix}oidc:AccessToken:${jti}`].sort(),
        );
      } finally {
        probe.disconnect();
      }
      const artifactRows = await stores.db.selectFrom('oidc_artifacts').select('id').execute();
      expect(artifactRows).toEqual([]);
      expect(await stores.ping()).toEqual({ database: true, cache: true });
    } finally {
      await stores.close();
    }
  });

  it('never logs the database password', async () => {
    const logger = recordingLogger();
    const stores = await openStores({
      databaseUrl: withPassword(database.url, 'hunter2-db'),
      redisUrl: testRedis.url,
      redisKeyPrefix: testRedis.prefix,
      dataDir,
      logger,
    });
    await stores.close();
    expect(logger.lines.length).toBeGreaterThan(0);
    expect(logger.lines.join('\n')).not.toContain('hunter2');
    expect(logger.lines.join('\n')).toContain('127.0.0.1');
  });

  it('keeps artifacts in PostgreSQL when no Redis URL is given', async () => {
    const stores = await openStores({
      databaseUrl: database.url,
      redisKeyPrefix: 'x:',
      dataDir,
      logger: recordingLogger(),
    });
    try {
      expect(stores.kinds).toEqual({ accounts: 'postgres', artifacts: 'postgres' });
      expect(await stores.ping()).toEqual({ database: true, cache: true });
    } finally {
      await stores.close();
    }
  });

  it('fails to open with an unreachable Redis, without the password in the error, and releases the database', async () => {
    const error = await openStores({
      databaseUrl: database.url,
      redisUrl: 'redis://:hunter2-redis@127.0.0.1:1',
      redisKeyPrefix: 'x:',
      dataDir,
      logger: recordingLogger(),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('127.0.0.1:1');
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain('hunter2');
    expect(String((error as Error).cause)).not.toContain('hunter2');
  });
});
