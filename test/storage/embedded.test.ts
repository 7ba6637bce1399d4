import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findAccountBySubject, linkIdentity } from '../../src/accounts/repository.ts';
import { openEmbeddedDatabase } from '../../src/storage/embedded.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import { migrations } from '../../src/storage/migrations/index.ts';
import { openPgliteBackend, type SqlBackend } from './backends.ts';

describe('embedded PGlite database', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wob-embedded-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates <dataDir>/pglite and keeps accounts across a restart', async () => {
    const dataDir = join(root, 'missing', 'data');
    const first = await openEmbeddedDatabase(dataDir);
    expect(await migrateToLatest(first)).toHaveLength(Object.keys(migrations).length);
    const { account } = await linkIdentity(
      first,
      { kind: 'website', appid: 'wx1', openid: 'o1', unionid: 'u1', snapshotUser: false },
      new Date(),
    );
    await first.destroy();
    expect((await stat(join(dataDir, 'pglite'))).isDirectory()).toBe(true);

    const reopened = await openEmbeddedDatabase(dataDir);
    try {
      expect(await migrateToLatest(reopened)).toEqual([]);
      expect(await findAccountBySubject(reopened, 'u1')).toEqual(account);
    } finally {
      await reopened.destroy();
    }
  });
});

describe('embedded PGlite database under concurrent requests', () => {
  let backend: SqlBackend;
  beforeAll(async () => {
    backend = await openPgliteBackend();
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('never runs a concurrent request inside another request’s transaction', async () => {
    const { db } = backend;
    const expires = new Date(Date.now() + 60_000);
    const insert = (executor: typeof db, key: string) =>
      executor
        .insertInto('kv_entries')
        .values({ key, value: JSON.stringify(key), expires_at: expires })
        .execute();

    let entered = () => {};
    const inTransaction = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });

    const transaction = db.transaction().execute(async (trx) => {
      await insert(trx, 'tx:rolled-back');
      entered();
      await gate;
      throw new Error('roll back');
    });
    await inTransaction;

    // Issued while the transaction is open: neither may join it.
    const plainInsert = insert(db, 'tx:plain');
    const plainRead = db.selectFrom('kv_entries').select('key').where('key', '=', 'tx:rolled-back').execute();
    release();

    await expect(transaction).rejects.toThrow('roll back');
    await plainInsert;
    expect(await plainRead).toEqual([]);
    const keys = await db.selectFrom('kv_entries').select('key').where('key', 'like', 'tx:%').execute();
    expect(keys.map((row) => row.key)).toEqual(['tx:plain']);
  });
});
