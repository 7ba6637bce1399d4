import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqlAvatarStore } from '../../src/accounts/avatars/store.ts';
import { rememberConsent } from '../../src/accounts/consents.ts';
import {
  findAccountBySubject,
  linkIdentity,
  listIdentities,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import { copyAccountsToPostgres } from '../../src/cli/copy-accounts-command.ts';
import { ACCOUNT_TABLES } from '../../src/storage/copy-tables.ts';
import { createPostgresDatabase } from '../../src/storage/postgres.ts';
import type { Database } from '../../src/storage/schema.ts';
import { embeddedAccountsFile, openAccountsDatabase } from '../../src/storage/sqlite/accounts-database.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { serviceAvailable } from '../helpers/services.ts';

const postgres = await serviceAvailable('postgres');
const t0 = new Date('2026-12-01T08:00:00.000Z');
const later = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);

/** Every row of a table in key order, with bytes as hex (PostgreSQL gives a Buffer, SQLite a Uint8Array). */
async function rowsOf(db: Kysely<Database>, table: keyof Database, key: readonly string[]) {
  const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(table)} order by ${sql.join(
    key.map((column) => sql.ref(column)),
  )}`.execute(db);
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([column, value]) => [
        column,
        value instanceof Uint8Array ? Buffer.from(value).toString('hex') : value,
      ]),
    ),
  );
}

/** An embedded accounts file with some of everything a person leaves in it. */
async function fillEmbedded(dataDir: string): Promise<void> {
  const db = await openAccountsDatabase(dataDir);
  try {
    const web = { kind: 'website', appid: 'wx-web', snapshotUser: false } as const;
    const { account: alice } = await linkIdentity(
      db,
      { ...web, openid: 'o-alice', unionid: 'u-alice', profile: { nickname: '爱丽丝 Alice' } },
      t0,
    );
    await linkIdentity(
      db,
      { kind: 'mini_program', appid: 'wx-mp', openid: 'o-alice-mp', unionid: 'u-alice', snapshotUser: false },
      later(1),
    );
    await createSqlAvatarStore(db).put({
      accountId: alice.id,
      sourceUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132',
      contentType: 'image/png',
      etag: '"abc"',
      bytes: new Uint8Array([137, 80, 78, 71, 0, 255]),
      updatedAt: later(1),
    });
    await rememberConsent(db, 'u-alice', 'third-party', ['openid', 'profile'], later(2));
    // Bob unbound his only WeChat, keeping a verified phone: his account waits to be recovered by it.
    const { account: bob } = await linkIdentity(db, { ...web, openid: 'o-bob', unionid: 'u-bob' }, t0);
    await setVerifiedPhoneNumber(db, bob.id, '+8613800000002', later(3));
    expect(await unbindIdentity(db, bob.id, { appid: 'wx-web', openid: 'o-bob' }, later(4))).toBe('unbound');
    await db
      .insertInto('account_deletions')
      .values({
        deleted_at: later(5),
        requested_by: 'person',
        identities: 2,
        grants_revoked: 1,
        sessions_ended: 1,
      })
      .execute();
    await db
      .insertInto('account_event_deliveries')
      .values({
        client_id: 'third-party',
        event_type: 'account-deleted',
        events_uri: 'https://rp.example/events',
        token: 'a.signed.set',
        attempts: 2,
        next_attempt_at: later(6),
        last_error: 'HTTP 503',
      })
      .execute();
    // The index of grants and sessions, whose artifacts stay behind: not copied.
    await db
      .insertInto('account_artifacts')
      .values({
        model: 'Grant',
        id: 'grant-1',
        subject: 'u-alice',
        client_id: 'third-party',
        expires_at: null,
      })
      .execute();
  } finally {
    await db.destroy();
  }
}

describe.skipIf(!postgres)('copying the embedded accounts to PostgreSQL', () => {
  let dataDir: string;
  let target: Awaited<ReturnType<typeof createTestDatabase>>;
  let pg: Kysely<Database>;
  const run = async (databaseUrl: string | undefined, dir = dataDir) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await copyAccountsToPostgres({
      dataDir: dir,
      databaseUrl,
      stdout: (text) => out.push(text),
      stderr: (text) => err.push(text),
    });
    return { code, out: out.join(''), err: err.join('') };
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'wob-copy-'));
    await fillEmbedded(dataDir);
    target = await createTestDatabase();
    pg = createPostgresDatabase(target.url);
  });
  afterAll(async () => {
    await pg?.destroy();
    await target?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('copies every account table row for row, and leaves the index of sessions and grants behind', async () => {
    // A password in the URL (the test server trusts any) never reaches the output.
    const withPassword = new URL(target.url);
    withPassword.password = 'pg-secret-for-the-test';
    const { code, out, err } = await run(withPassword.toString());
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('2 accounts, 2 identities, 1 avatars, 1 consents, 1 account_deletions');
    expect(out).not.toContain('pg-secret-for-the-test');

    const embedded = await openAccountsDatabase(dataDir);
    try {
      for (const [table, key] of ACCOUNT_TABLES) {
        const source = await rowsOf(embedded, table, key);
        expect(source.length, table).toBeGreaterThan(0);
        expect(await rowsOf(pg, table, key), table).toEqual(source);
      }
      expect(await rowsOf(pg, 'account_artifacts', ['model', 'id'])).toEqual([]);
      // The source is left as it was.
      expect(await rowsOf(embedded, 'account_artifacts', ['model', 'id'])).toHaveLength(1);
    } finally {
      await embedded.destroy();
    }
  });

  it('lets the copied accounts be used: a returning person logs in to the same account', async () => {
    const before = await findAccountBySubject(pg, 'u-alice');
    const { account, created } = await linkIdentity(
      pg,
      { kind: 'website', appid: 'wx-web', openid: 'o-alice', unionid: 'u-alice', snapshotUser: false },
      later(10),
    );
    expect(created).toBe(false);
    expect(account.id).toBe(before?.id);
    expect((await listIdentities(pg, account.id)).map((i) => i.appid).sort()).toEqual(['wx-mp', 'wx-web']);
    const bob = await findAccountBySubject(pg, 'u-bob');
    expect(bob).toMatchObject({ phone_number: '+8613800000002', phone_number_verified: true });
  });

  it('refuses a database that already holds accounts, writing nothing', async () => {
    const before = await rowsOf(pg, 'accounts', ['id']);
    const { code, err } = await run(target.url);
    expect(code).toBe(1);
    expect(err).toContain('already holds accounts: the copy goes into an empty database only');
    expect(err).not.toContain(target.url);
    expect(await rowsOf(pg, 'accounts', ['id'])).toEqual(before);
  });

  it('writes nothing when the copy fails midway', async () => {
    const other = await createTestDatabase();
    const db = createPostgresDatabase(other.url);
    try {
      expect((await run(other.url)).code).toBe(0);
      await sql`truncate accounts, account_deletions, account_event_deliveries cascade`.execute(db);
      // The consents are refused: by then the accounts, identities and avatars were inserted.
      await sql`create function refuse() returns trigger language plpgsql as
        $$ begin raise exception 'refused for the test'; end $$`.execute(db);
      await sql`create trigger refuse before insert on consents execute function refuse()`.execute(db);
      const failed = await run(other.url);
      expect(failed.code).toBe(1);
      expect(failed.err).toContain('failed and wrote nothing: refused for the test');
      expect(await rowsOf(db, 'accounts', ['id'])).toEqual([]);
      expect(await rowsOf(db, 'identities', ['appid', 'openid'])).toEqual([]);
    } finally {
      await db.destroy();
      await other.drop();
    }
  });

  it('says so when PostgreSQL cannot be reached, naming the server but not the password', async () => {
    const { code, err } = await run('postgres://postgres:pg-secret-for-the-test@127.0.0.1:1/none');
    expect(code).toBe(1);
    expect(err).toContain(
      'the copy to postgres://127.0.0.1:1/none failed and wrote nothing: cannot connect to PostgreSQL at postgres://127.0.0.1:1/none (DATABASE_URL or storage.databaseUrl): connect ECONNREFUSED 127.0.0.1:1',
    );
    // The migrations were never reached: saying they failed sent operators to the schema.
    expect(err).not.toContain('migration');
    expect(err).not.toContain('pg-secret-for-the-test');
  });

  it('says what is missing: no database URL, no embedded file, a file in use', async () => {
    expect(await run(undefined)).toMatchObject({
      code: 1,
      err: expect.stringContaining('set DATABASE_URL'),
    });

    const empty = await mkdtemp(join(tmpdir(), 'wob-copy-empty-'));
    try {
      expect(await run(target.url, empty)).toMatchObject({
        code: 1,
        err: expect.stringContaining('accounts.sqlite does not exist: nothing to copy'),
      });
      expect(existsSync(embeddedAccountsFile(empty))).toBe(false);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }

    const server = await openAccountsDatabase(dataDir);
    try {
      expect(await run(target.url)).toMatchObject({
        code: 1,
        err: expect.stringContaining('is open in another process'),
      });
    } finally {
      await server.destroy();
    }
  });
});
