import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CompiledQuery, Kysely, type LogEvent, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexWriter } from '../../src/accounts/artifact-batch.ts';
import { forgetArtifact, indexedArtifacts } from '../../src/accounts/artifact-index.ts';
import { createSqlAvatarStore } from '../../src/accounts/avatars/store.ts';
import {
  forgetConsent,
  listConsents,
  rememberConsent,
  rememberedScopes,
} from '../../src/accounts/consents.ts';
import { findAccountForOperator } from '../../src/accounts/deletion.ts';
import {
  findAccountBySubject,
  findAccountByUnionid,
  findIdentity,
  linkIdentity,
  listIdentities,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import type { Database } from '../../src/storage/schema.ts';
import { createSqlKeyValueStore } from '../../src/storage/sql/key-value.ts';
import { createSqlOidcAdapter } from '../../src/storage/sql/oidc-adapter.ts';
import { sweepExpired } from '../../src/storage/sql/sweeper.ts';
import { ACCOUNTS_SCHEMA } from '../../src/storage/sqlite/accounts-database.ts';
import { openSqliteFile } from '../../src/storage/sqlite/file.ts';
import { sqliteKysely } from '../../src/storage/sqlite/kysely-dialect.ts';
import type { WeChatIdentity } from '../../src/upstream/wechat/types.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { serviceAvailable } from '../helpers/services.ts';

const postgres = await serviceAvailable('postgres');
const silentLogger = createLogger({ level: 'silent' });

/** Where the statements run, and how the plans they run with are read there. */
interface PlanBackend {
  db: Kysely<Database>;
  /** Forgets the statements issued so far. */
  startRecording(): void;
  /** Each statement issued since startRecording, with the relations its plan reads whole. */
  plans(): Promise<{ sql: string; scans: string[] }[]>;
  close(): Promise<void>;
}

/** Statements that read or write rows (not begin, commit or pragmas). */
const DATA_STATEMENT = /^\s*(select|insert|update|delete|with)\b/i;

/**
 * PostgreSQL plans each statement for its values (the pg driver sends unnamed statements). Run on
 * a test database of a few rows, the planner would scan whatever the plan, so sequential scans are
 * priced out (enable_seqscan off): a statement still planned with one has no index that serves it.
 */
async function postgresBackend(): Promise<PlanBackend> {
  const database = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const issued: CompiledQuery[] = [];
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    log: (event: LogEvent) => {
      if (event.level === 'query') issued.push(event.query);
    },
  });
  await migrateToLatest(db);
  return {
    db,
    startRecording: () => {
      issued.length = 0;
    },
    async plans() {
      const statements = issued.filter((query) => DATA_STATEMENT.test(query.sql));
      const client = await pool.connect();
      try {
        await client.query('begin');
        await client.query('set local enable_seqscan = off');
        const found = [];
        for (const { sql, parameters } of statements) {
          const { rows } = await client.query(`explain (format json) ${sql}`, [...parameters]);
          found.push({ sql, scans: sequentialScansOf(rows[0]['QUERY PLAN'][0].Plan) });
        }
        return found;
      } finally {
        await client.query('rollback');
        client.release();
      }
    },
    async close() {
      await db.destroy();
      await database.drop();
    },
  };
}

/**
 * The embedded accounts file. SQLite plans a statement when it is prepared, from the schema (it has no
 * statistics until ANALYZE), and the statements here are prepared once and kept: the plan must use
 * an index whatever the tables hold. Every statement run on the file is recorded, the prepared ones
 * of the returning person's login (src/accounts/sqlite-login.ts) with Kysely's.
 */
async function sqliteBackend(): Promise<PlanBackend> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wob-plans-'));
  const database = await openSqliteFile(join(dataDir, 'accounts.sqlite'), ACCOUNTS_SCHEMA);
  const issued: string[] = [];
  const prepare = database.prepare.bind(database);
  database.prepare = (sql: string) => {
    const statement = prepare(sql);
    for (const method of ['all', 'get', 'run', 'iterate'] as const) {
      const call = statement[method].bind(statement) as (...args: never[]) => unknown;
      Object.defineProperty(statement, method, {
        value: (...args: never[]) => {
          issued.push(sql);
          return call(...args);
        },
      });
    }
    return statement;
  };
  const db = sqliteKysely(database);
  return {
    db,
    startRecording: () => {
      issued.length = 0;
    },
    async plans() {
      return [...new Set(issued.filter((sql) => DATA_STATEMENT.test(sql)))].map((sql) => ({
        sql,
        // "SCAN <table>" reads the table whole; SEARCH uses an index, SCAN of a CTE or json_each is no table.
        scans: prepare(`explain query plan ${sql}`)
          .all()
          .map((row) => String(row.detail))
          .filter((detail) => /^SCAN (accounts|identities|avatars|consents|account_\w+)\b/.test(detail)),
      }));
    },
    async close() {
      await db.destroy();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A login runs once per person per visit, against every account there is: each of its statements
 * must find rows through an index. A statement planned with a sequential scan has no index that
 * serves it, and at a few hundred thousand accounts it reads them all (as the returning person's
 * statement once did, most of a second per login).
 */
describe.skipIf(!postgres)('the statements of a login on PostgreSQL', () => {
  definePlanTests(postgresBackend, { artifacts: true });
});

describe('the statements of a login in the embedded accounts file, planned once and kept', () => {
  // The embedded setup's artifacts are in a file of their own, with statements of their own.
  definePlanTests(sqliteBackend, { artifacts: false });
});

function definePlanTests(open: () => Promise<PlanBackend>, options: { artifacts: boolean }): void {
  let backend: PlanBackend;
  let db: Kysely<Database>;

  beforeAll(async () => {
    backend = await open();
    db = backend.db;
  });

  afterAll(async () => {
    await backend?.close();
  });

  const identity = (unionid: string, appid = 'wx-website'): WeChatIdentity & { unionid: string } => ({
    kind: 'website',
    appid,
    openid: `openid-${randomUUID()}`,
    unionid,
    profile: { nickname: 'Alice', avatarUrl: 'https://thirdwx.qlogo.cn/mmopen/vi_32/alice/132' },
    snapshotUser: false,
  });

  /** The statements `run` issues, each with the relations its plan scans sequentially. */
  async function sequentialScans(run: () => Promise<unknown>): Promise<{ sql: string; scans: string[] }[]> {
    backend.startRecording();
    await run();
    const plans = await backend.plans();
    expect(plans.length).toBeGreaterThan(0);
    return plans;
  }

  it('a first login, a returning one and another app of the same person read no table whole', async () => {
    const unionid = `u-${randomUUID()}`;
    const website = identity(unionid);
    // The grant and the session a login leaves are indexed by account (written in batches).
    const artifacts = indexWriter(db, silentLogger);
    const plans = await sequentialScans(async () => {
      await linkIdentity(db, website, new Date(), { consentFor: 'client' });
      await linkIdentity(db, website, new Date(), { consentFor: 'client' });
      await linkIdentity(db, identity(unionid, 'wx-official'), new Date(), { consentFor: 'client' });
      const expires_at = new Date(Date.now() + 3_600_000);
      artifacts.add({ model: 'Grant', id: randomUUID(), subject: unionid, client_id: 'client', expires_at });
      artifacts.add({ model: 'Session', id: randomUUID(), subject: unionid, client_id: null, expires_at });
      await artifacts.flush();
      expect(await indexedArtifacts(db, unionid, 'Session')).toHaveLength(1);
    });
    expect(plans.filter((plan) => plan.scans.length > 0)).toEqual([]);
  });

  it('finding an account by unionid, subject or identity, and its remembered consent, read no table whole', async () => {
    const unionid = `u-${randomUUID()}`;
    const website = identity(unionid);
    const { account } = await linkIdentity(db, website, new Date());
    const plans = await sequentialScans(async () => {
      expect((await findAccountByUnionid(db, unionid))?.id).toBe(account.id);
      expect((await findAccountBySubject(db, unionid))?.id).toBe(account.id);
      expect((await findIdentity(db, website.appid, website.openid))?.account.id).toBe(account.id);
      await rememberConsent(db, unionid, 'client', ['openid', 'profile'], new Date());
      expect(await rememberedScopes(db, unionid, 'client')).toEqual(new Set(['openid', 'profile']));
    });
    expect(plans.filter((plan) => plan.scans.length > 0)).toEqual([]);
  });

  if (options.artifacts)
    it("the artifact and key-value stores' statements (PostgreSQL's without Redis) read no table whole", async () => {
      const artifacts = createSqlOidcAdapter(db, { sweepIntervalMs: 0 });
      const kv = createSqlKeyValueStore(db, { sweepIntervalMs: 0 });
      const plans = await sequentialScans(async () => {
        const interaction = artifacts.factory('Interaction');
        const code = artifacts.factory('AuthorizationCode');
        const session = artifacts.factory('Session');
        const deviceCode = artifacts.factory('DeviceCode');
        const grantId = randomUUID();
        await interaction.upsert('interaction-1', { jti: 'interaction-1' }, 600);
        await code.upsert('code-1', { jti: 'code-1', grantId }, 60);
        await session.upsert('session-1', { jti: 'session-1', uid: 'session-uid-1' }, 600);
        await deviceCode.upsert('device-1', { jti: 'device-1', userCode: 'USER-CODE', grantId }, 600);
        expect(await interaction.find('interaction-1')).toBeDefined();
        expect(await session.findByUid('session-uid-1')).toBeDefined();
        expect(await deviceCode.findByUserCode('USER-CODE')).toBeDefined();
        await code.consume('code-1');
        await interaction.destroy('interaction-1');
        await session.destroy('session-1');
        await code.revokeByGrantId(grantId);
        await kv.put('state-1', { uid: 'x' }, 60);
        expect(await kv.putIfAbsent('claim-1', { uid: 'x' }, 60)).toBe(true);
        expect(await kv.get('state-1')).toEqual({ uid: 'x' });
        expect(await kv.take('claim-1')).toEqual({ uid: 'x' });
        await kv.delete('state-1');
        await kv.put('key-1', 'sealed', 60);
        expect(await kv.deleteIfEquals('key-1', 'sealed')).toBe(true);
        await artifacts.sweep();
        await kv.sweep();
      });
      expect(plans.filter((plan) => plan.scans.length > 0)).toEqual([]);
    });

  it("binding a verified phone, the recovery it looks for, and the operator's lookups read no table whole", async () => {
    const waiting = identity(`u-${randomUUID()}`, 'wx-mp');
    const { account: before } = await linkIdentity(db, waiting, new Date());
    await setVerifiedPhoneNumber(db, before.id, '+8613900000123', new Date());
    expect(await unbindIdentity(db, before.id, waiting, new Date())).toBe('unbound');
    const fresh = identity(`u-${randomUUID()}`, 'wx-mp');
    const { account } = await linkIdentity(db, fresh, new Date());
    const plans = await sequentialScans(async () => {
      const binding = await setVerifiedPhoneNumber(db, account.id, '+8613900000123', new Date());
      expect(binding?.account.id).toBe(before.id);
      expect((await findAccountForOperator(db, { openid: fresh.openid }))?.id).toBe(before.id);
      expect((await findAccountForOperator(db, { unionid: fresh.unionid }))?.id).toBe(before.id);
    });
    expect(plans.filter((plan) => plan.scans.length > 0)).toEqual([]);
  });

  it("the account page's statements (apps, consents, avatar, unbinding) read no table whole", async () => {
    const unionid = `u-${randomUUID()}`;
    const website = identity(unionid);
    const { account } = await linkIdentity(db, website, new Date());
    await linkIdentity(db, identity(unionid, 'wx-official'), new Date());
    await rememberConsent(db, unionid, 'client', ['openid'], new Date());
    const avatars = createSqlAvatarStore(db);
    const plans = await sequentialScans(async () => {
      expect(await listIdentities(db, account.id)).toHaveLength(2);
      expect(await listConsents(db, unionid)).toHaveLength(1);
      expect(await indexedArtifacts(db, unionid, 'Grant')).toEqual([]);
      await avatars.info(account.id);
      expect(await unbindIdentity(db, account.id, website, new Date())).toBe('unbound');
      expect(await forgetConsent(db, unionid, 'client')).toBe(true);
      await forgetArtifact(db, 'Grant', 'no-such-grant');
      await sweepExpired(db, 'account_artifacts', new Date());
    });
    expect(plans.filter((plan) => plan.scans.length > 0)).toEqual([]);
  });
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function sequentialScansOf(node: PlanNode): string[] {
  const own = node['Node Type'] === 'Seq Scan' ? [node['Relation Name'] ?? '?'] : [];
  return [...own, ...(node.Plans ?? []).flatMap(sequentialScansOf)];
}
