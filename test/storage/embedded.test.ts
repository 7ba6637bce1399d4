import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findAccountBySubject, linkIdentity } from '../../src/accounts/repository.ts';
import {
  ACCOUNTS_SCHEMA,
  embeddedAccountsFile,
  openAccountsDatabase,
} from '../../src/storage/sqlite/accounts-database.ts';
import { openSqliteFile } from '../../src/storage/sqlite/file.ts';
import { openPgliteBackend, openSqliteAccountsBackend, type SqlBackend } from './backends.ts';

describe('embedded accounts file', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wob-embedded-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('creates <dataDir>/accounts.sqlite and keeps accounts across a restart', async () => {
    const dataDir = join(root, 'missing', 'data');
    const first = await openAccountsDatabase(dataDir);
    const { account } = await linkIdentity(
      first,
      { kind: 'website', appid: 'wx1', openid: 'o1', unionid: 'u1', snapshotUser: false },
      new Date(),
    );
    await first.destroy();
    expect((await stat(embeddedAccountsFile(dataDir))).isFile()).toBe(true);

    const reopened = await openAccountsDatabase(dataDir);
    try {
      expect(await findAccountBySubject(reopened, 'u1')).toEqual(account);
      expect(account.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(account.created_at).toBeInstanceOf(Date);
      expect(account.phone_number_verified).toBe(false);
    } finally {
      await reopened.destroy();
    }
  });

  it('gives accounts of a file of before their updated_at as profile_updated_at (the updated_at claim)', async () => {
    const dataDir = join(root, 'version-1');
    const changed = new Date('2026-12-01T08:00:00.000Z').getTime();
    const old = await openSqliteFile(embeddedAccountsFile(dataDir), ACCOUNTS_SCHEMA.slice(0, 1));
    old.prepare("insert into accounts (subject, updated_at) values ('u-before', ?)").run(changed);
    old.close();

    const upgraded = await openAccountsDatabase(dataDir);
    try {
      const account = await findAccountBySubject(upgraded, 'u-before');
      expect(account?.profile_updated_at).toEqual(new Date(changed));
    } finally {
      await upgraded.destroy();
    }
  });
});

describe.each([
  ['SQLite (the embedded accounts)', openSqliteAccountsBackend],
  ['PGlite', openPgliteBackend],
])('%s under concurrent requests', (_, open) => {
  let backend: SqlBackend;
  beforeAll(async () => {
    backend = await open();
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('never runs a concurrent request inside another request’s transaction', async () => {
    const { db } = backend;
    const insert = (executor: typeof db, subject: string) =>
      executor.insertInto('accounts').values({ subject, profile_updated_at: new Date() }).execute();

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
    const plainRead = db
      .selectFrom('accounts')
      .select('subject')
      .where('subject', '=', 'tx:rolled-back')
      .execute();
    release();

    await expect(transaction).rejects.toThrow('roll back');
    await plainInsert;
    expect(await plainRead).toEqual([]);
    const rows = await db.selectFrom('accounts').select('subject').where('subject', 'like', 'tx:%').execute();
    expect(rows.map((row) => row.subject)).toEqual(['tx:plain']);
  });
});
