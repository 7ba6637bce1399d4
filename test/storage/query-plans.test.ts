import { randomUUID } from 'node:crypto';
import { type CompiledQuery, Kysely, PostgresDialect } from 'kysely';
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
import type { Database } from '../../src/storage/schema.ts';
import type { WeChatIdentity } from '../../src/upstream/wechat/types.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { serviceAvailable } from '../helpers/services.ts';

const postgres = await serviceAvailable('postgres');
const silentLogger = createLogger({ level: 'silent' });

/**
 * A login runs once per person per visit, against every account there is: each of its statements
 * must find rows through an index. Run on a test database of a few rows, the planner would scan
 * whatever the plan, so sequential scans are priced out (enable_seqscan off): a statement still
 * planned with one has no index that serves it, and at a few hundred thousand accounts it reads
 * them all (as the returning person's statement once did, most of a second per login).
 */
describe.skipIf(!postgres)('the statements of a login on PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let pool: pg.Pool;
  let db: Kysely<Database>;
  const issued: CompiledQuery[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = new pg.Pool({ connectionString: database.url, max: 2 });
    db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool }),
      log: (event) => {
        if (event.level === 'query') issued.push(event.query);
      },
    });
    await migrateToLatest(db);
  });

  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
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
});

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function sequentialScansOf(node: PlanNode): string[] {
  const own = node['Node Type'] === 'Seq Scan' ? [node['Relation Name'] ?? '?'] : [];
  return [...own, ...(node.Plans ?? []).flatMap(sequentialScansOf)];
}
