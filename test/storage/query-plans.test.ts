import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
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
import {
  findAccountBySubject,
  findAccountByUnionid,
  findIdentity,
  linkIdentity,
  listIdentities,
} from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import { PreparedPGliteDialect } from '../../src/storage/pglite-driver.ts';
import type { Database } from '../../src/storage/schema.ts';
import { createSqlKeyValueStore } from '../../src/storage/sql/key-value.ts';
import { createSqlOidcAdapter } from '../../src/storage/sql/oidc-adapter.ts';
import { sweepExpired } from '../../src/storage/sql/sweeper.ts';
import type { WeChatIdentity } from '../../src/upstream/wechat/types.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { serviceAvailable } from '../helpers/services.ts';

const postgres = await serviceAvailable('postgres');
const silentLogger = createLogger({ level: 'silent' });

/** Where the statements run, and how the plans they run with are read there. */
interface PlanBackend {
  db: Kysely<Database>;
  /** Each statement with the relations its plan scans sequentially. */
  plansOf(statements: CompiledQuery[]): Promise<{ sql: string; scans: string[] }[]>;
  close(): Promise<void>;
}

/**
 * PostgreSQL plans each statement for its values (the pg driver sends unnamed statements). Run on
 * a test database of a few rows, the planner would scan whatever the plan, so sequential scans are
 * priced out (enable_seqscan off): a statement still planned with one has no index that serves it.
 */
async function postgresBackend(issued: CompiledQuery[]): Promise<PlanBackend> {
  const database = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: collectInto(issued) });
  await migrateToLatest(db);
  return {
    db,
    async plansOf(statements) {
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
 * The embedded store plans each statement once and keeps the plan (src/storage/pglite-driver.ts):
 * what runs is the generic plan, made under the driver's own settings in PGlite's one session, from
 * whatever statistics the tables had then. Here they are those of empty tables that a sweep has
 * vacuumed (as at the start, or after a quiet night): the plan must use an index all the same, or
 * it is kept as the tables fill.
 */
async function pgliteBackend(issued: CompiledQuery[]): Promise<PlanBackend> {
  const pglite = await PGlite.create();
  const db = new Kysely<Database>({ dialect: new PreparedPGliteDialect(pglite), log: collectInto(issued) });
  await migrateToLatest(db);
  for (const table of ['accounts', 'identities', 'oidc_artifacts', 'kv_entries', 'account_artifacts'])
    await pglite.exec(`vacuum analyze ${table}`);
  return {
    db,
    async plansOf(statements) {
      const found = [];
      for (const { sql } of statements) {
        // Simple protocol: the statement's parameters stay unbound, as GENERIC_PLAN wants them.
        const [result] = await pglite.exec(`explain (generic_plan, format json) ${sql}`);
        const row = result?.rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] } | undefined;
        found.push({ sql, scans: sequentialScansOf(row?.['QUERY PLAN'][0].Plan ?? noPlan(sql)) });
      }
      return found;
    },
    close: () => db.destroy(),
  };
}

function noPlan(sql: string): never {
  throw new Error(`no plan for ${sql}`);
}

function collectInto(issued: CompiledQuery[]): (event: LogEvent) => void {
  return (event) => {
    if (event.level === 'query') issued.push(event.query);
  };
}

/**
 * A login runs once per person per visit, against every account there is: each of its statements
 * must find rows through an index. A statement planned with a sequential scan has no index that
 * serves it, and at a few hundred thousand accounts it reads them all (as the returning person's
 * statement once did, most of a second per login).
 */
describe.skipIf(!postgres)('the statements of a login on PostgreSQL', () => {
  definePlanTests(postgresBackend);
});

describe('the statements of a login on the embedded PGlite, planned once and kept', () => {
  definePlanTests(pgliteBackend);
});

function definePlanTests(open: (issued: CompiledQuery[]) => Promise<PlanBackend>): void {
  let backend: PlanBackend;
  let db: Kysely<Database>;
  const issued: CompiledQuery[] = [];

  beforeAll(async () => {
    backend = await open(issued);
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
    issued.length = 0;
    await run();
    const statements = issued.filter((query) => /^\s*(select|insert|update|delete|with)\b/i.test(query.sql));
    expect(statements.length).toBeGreaterThan(0);
    return backend.plansOf(statements);
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

  it("the artifact and key-value stores' statements (the embedded setup's, or PostgreSQL's without Redis) read no table whole", async () => {
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
      await artifacts.sweep();
      await kv.sweep();
      await sweepExpired(db, 'account_artifacts', new Date());
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
