import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqlAvatarStore } from '../../src/accounts/avatars/store.ts';
import { rememberConsent, rememberedScopes } from '../../src/accounts/consents.ts';
import {
  type Account,
  findAccountBySubject,
  linkIdentity,
  listIdentities,
} from '../../src/accounts/repository.ts';
import { causes } from '../../src/observability/causes.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import { openStores, type StoresLogger } from '../../src/storage/open-stores.ts';
import { embeddedArtifactsFile } from '../../src/storage/sqlite/database.ts';
import { openPgliteDatabase } from '../../src/storage/sqlite/pglite-source.ts';
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

  it('falls back to SQLite files for accounts and artifacts when no URL is given', async () => {
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
      expect(await stores.db.selectFrom('accounts').select('id').execute()).toEqual([]);
      expect(await stores.kv.take('k')).toBe('v');
      expect(await stores.ping()).toEqual({ database: true, cache: true });
    } finally {
      await stores.close();
    }
  });

  it('refuses a second server on the same data directory', async () => {
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

  it('copies the accounts an earlier release kept in PGlite once, and sets the old directory aside', async () => {
    const dir = join(dataDir, 'upgraded');
    const at = new Date('2026-12-01T08:00:00.000Z');
    const avatar = {
      sourceUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132',
      contentType: 'image/png' as const,
      etag: '"abc"',
      updatedAt: at,
      bytes: new Uint8Array([1, 2, 3]),
    };
    const old = await openPgliteDatabase(dir);
    let account: Account;
    try {
      await migrateToLatest(old);
      const identity = { kind: 'website' as const, appid: 'wx1', openid: 'o1', unionid: 'u1' };
      ({ account } = await linkIdentity(old, { ...identity, snapshotUser: false }, at));
      await rememberConsent(old, 'u1', 'rp', ['openid', 'profile'], at);
      await createSqlAvatarStore(old).put({ accountId: account.id, ...avatar });
      // Sessions of that release are not carried over.
      await old
        .insertInto('oidc_artifacts')
        .values({ model: 'Session', id: 'old', payload: JSON.stringify({ accountId: 'u1' }) })
        .execute();
    } finally {
      await old.destroy();
    }

    const logger = recordingLogger();
    const stores = await openStores({ redisKeyPrefix: 'unused:', dataDir: dir, logger });
    try {
      expect(await findAccountBySubject(stores.db, 'u1')).toEqual(account);
      expect((await listIdentities(stores.db, account.id)).map((i) => i.openid)).toEqual(['o1']);
      expect(await rememberedScopes(stores.db, 'u1', 'rp')).toEqual(new Set(['openid', 'profile']));
      expect(await createSqlAvatarStore(stores.db).get(account.id)).toEqual({
        accountId: account.id,
        ...avatar,
      });
      expect(await stores.oidcAdapter('Session').find('old')).toBeUndefined();
      expect(logger.lines.join('\n')).toContain('"accounts":1');
    } finally {
      await stores.close();
    }
    expect(existsSync(join(dir, 'pglite'))).toBe(false);
    expect(existsSync(join(dir, 'pglite.copied'))).toBe(true);

    const again = recordingLogger();
    const reopened = await openStores({ redisKeyPrefix: 'unused:', dataDir: dir, logger: again });
    try {
      expect(await reopened.db.selectFrom('accounts').select('subject').execute()).toEqual([
        { subject: 'u1' },
      ]);
      expect(again.lines.join('\n')).not.toContain('PGlite');
    } finally {
      await reopened.close();
    }

    // A crash after the copy's commit and before the rename: the next start renames, copying nothing.
    await rename(join(dir, 'pglite.copied'), join(dir, 'pglite'));
    const afterCrash = await openStores({
      redisKeyPrefix: 'unused:',
      dataDir: dir,
      logger: recordingLogger(),
    });
    try {
      expect(await afterCrash.db.selectFrom('accounts').select('subject').execute()).toEqual([
        { subject: 'u1' },
      ]);
    } finally {
      await afterCrash.close();
    }
    expect(existsSync(join(dir, 'pglite'))).toBe(false);
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
          [
            `${testRedis.prefix}kv:state`,
            `${testRedis.prefix}oidc:AccessToken:${jti}`,
            // The deployment's marker, whose absence after a reconnection says Redis lost its data.
            `${testRedis.prefix}deployment`,
          ].sort(),
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

  it('keeps accounts in the embedded file and artifacts under the Redis prefix when only Redis is given', async () => {
    const dir = join(dataDir, 'accounts-only');
    const stores = await openStores({
      redisUrl: testRedis.url,
      redisKeyPrefix: testRedis.prefix,
      dataDir: dir,
      logger: recordingLogger(),
    });
    try {
      expect(stores.kinds).toEqual({ accounts: 'embedded', artifacts: 'redis' });
      const { account } = await linkIdentity(
        stores.db,
        { kind: 'website', appid: 'wx1', openid: 'o1', unionid: 'u1', snapshotUser: false },
        new Date(),
      );
      expect(await findAccountBySubject(stores.db, 'u1')).toEqual(account);
      expect(existsSync(join(dir, 'accounts.sqlite'))).toBe(true);
      expect(existsSync(join(dir, 'artifacts.sqlite'))).toBe(false);
      expect(await stores.ping()).toEqual({ database: true, cache: true });
      // The accounts file is this process's alone, Redis or not.
      await expect(
        openStores({
          redisUrl: testRedis.url,
          redisKeyPrefix: testRedis.prefix,
          dataDir: dir,
          logger: recordingLogger(),
        }),
      ).rejects.toThrow('the embedded store admits one process per data directory');
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

  // The first use of the connection is the migrations': an unreachable server, or a database it
  // does not have, was reported as "database migrations failed: connect ECONNREFUSED ...", naming
  // neither the store nor the setting (an operator's review).
  it.each([
    ['a server nobody listens on', '127.0.0.1:1', '/wob', 'connect ECONNREFUSED 127.0.0.1:1'],
    [
      'a database the server does not have',
      undefined,
      '/wob_no_such_database',
      'database "wob_no_such_database" does not exist',
    ],
  ])(
    'fails to open %s as a PostgreSQL it cannot connect to, naming the setting',
    async (_, host, path, reason) => {
      const url = new URL(database.url);
      if (host) url.host = host;
      url.pathname = path;
      url.password = 'hunter2-db';
      const error = await openStores({
        databaseUrl: url.href,
        redisKeyPrefix: 'x:',
        dataDir,
        logger: recordingLogger(),
      }).catch((e: unknown) => e);
      expect(causes(error)).toBe(
        `cannot connect to PostgreSQL at postgres://${url.host}${path} (DATABASE_URL or storage.databaseUrl): ${reason}`,
      );
    },
  );
});
