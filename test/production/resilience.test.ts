import { setTimeout } from 'node:timers/promises';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { QUERY_TIMEOUT_MS } from '../../src/storage/postgres.ts';
import { COMMAND_TIMEOUT_MS } from '../../src/storage/redis/connect.ts';
import { type Bridge, logLines, startBridge, storageAvailable } from '../helpers/bridge.ts';
import { TestBrowser } from '../helpers/browser.ts';
import {
  authorizationRequest,
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { testDatabaseAdminUrl } from '../helpers/postgres.ts';
import { type OwnRedis, ownRedis } from './own-redis.ts';
import { startTcpRelay, type TcpRelay } from './tcp-relay.ts';

const available = await storageAvailable('postgres+redis');

interface Readiness {
  status: string;
  dependencies: Record<'database' | 'cache', { kind: string; up: boolean }>;
}

/** The warning of a Redis that came back without its data. */
const EMPTIED = 'Redis came back without its data';

describe.skipIf(!available)('resilience: Redis or PostgreSQL down, then back', () => {
  let redis: OwnRedis;
  let postgres: TcpRelay;
  let bridge: Bridge;
  let rp: oidc.Configuration;
  let panda: SandboxUser;

  beforeAll(async () => {
    redis = await ownRedis();
    const shared = new URL(testDatabaseAdminUrl());
    postgres = await startTcpRelay({ host: shared.hostname, port: Number(shared.port || 5432) });
    bridge = await startBridge({
      storage: 'postgres+redis',
      configure: (config) => {
        const databaseUrl = new URL(config.storage.databaseUrl as string);
        databaseUrl.port = String(postgres.port);
        return {
          ...config,
          storage: { ...config.storage, redisUrl: redis.url, databaseUrl: databaseUrl.href },
        };
      },
    });
    rp = await relyingParty(bridge);
    panda = await createSandboxUser(bridge, '🐼 熊猫 Panda');
  }, 30_000);
  afterAll(async () => {
    await bridge?.close();
    await postgres?.close();
    await redis?.stop();
  });

  async function readiness(): Promise<{ status: number; body: Readiness }> {
    const response = await fetch(`${bridge.url}/readyz`);
    return { status: response.status, body: (await response.json()) as Readiness };
  }

  /** Asks /readyz until it answers 200: each probe waits for the stores, so this is not a busy loop. */
  async function untilReady(): Promise<void> {
    for (let attempt = 0; attempt < 40; attempt++) if ((await readiness()).status === 200) return;
    throw new Error('the bridge did not become ready again');
  }

  async function tokenRequestStatus(refreshToken: string) {
    const response = await fetch(`${bridge.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      body: (await response.json()) as { error?: string; error_description?: string },
    };
  }

  async function loginPageAnswer() {
    const { url } = await authorizationRequest(rp);
    return new TestBrowser().request(url.href, { headers: { accept: 'text/html,application/xhtml+xml' } });
  }

  test('Redis down: /readyz names it, requests get 503 at once, and service resumes when it is back', async () => {
    const before = await loginAs(rp, panda, { scope: 'openid offline_access', prompt: 'consent' });
    await redis.stop();

    const down = await readiness();
    expect(down.status).toBe(503);
    expect(down.body.dependencies.cache).toEqual({ kind: 'redis', up: false });
    expect(down.body.dependencies.database.up).toBe(true);
    // What an alert on the outage reads.
    const scrape = await (await fetch(`${bridge.url}/metrics`)).text();
    expect(scrape).toContain('dependency_up{dependency="cache"} 0');
    expect(scrape).toContain('dependency_up{dependency="database"} 1');

    const token = await tokenRequestStatus(before.tokens.refresh_token as string);
    expect(token.status).toBe(503);
    expect(token.retryAfter).toBe('5');
    expect(token.body).toMatchObject({ error: 'temporarily_unavailable' });
    expect(token.body.error_description).toBe('the session store (redis) is unavailable: try again shortly');
    const page = await loginPageAnswer();
    expect(page.status).toBe(503);
    expect(page.body).toContain('登录服务暂时不可用');
    expect((await fetch(`${bridge.url}/.well-known/openid-configuration`)).status).toBe(200);

    await redis.start();
    await untilReady();
    expect(await (await fetch(`${bridge.url}/metrics`)).text()).toContain(
      'dependency_up{dependency="cache"} 1',
    );
    // This Redis came back empty (no persistence): the log says what that cost, once.
    await vi.waitFor(() => expect(logLines(bridge, { text: EMPTIED })).toHaveLength(1));
    const after = await loginAs(rp, panda);
    expect(after.tokens.claims()?.sub).toBe(panda.unionid);
  });

  test('Redis hung: a request waiting on it fails within the command timeout instead of hanging, and service resumes', async () => {
    const before = await loginAs(rp, panda, { scope: 'openid' });
    redis.pause();
    try {
      // Bounded well past the command timeout and the probe after it: an answer, not a hang.
      const answer = await fetch(`${bridge.url}/me`, {
        headers: { authorization: `Bearer ${before.tokens.access_token}` },
        signal: AbortSignal.timeout(3 * COMMAND_TIMEOUT_MS + 5000),
      });
      expect(answer.status).toBe(503);
      // The engine's own failure line names the request, as its access line does.
      const requestId = answer.headers.get('x-request-id') as string;
      const failure = logLines(bridge, { text: requestId }).find((line) =>
        line.includes('oidc server_error'),
      );
      expect(failure).toBeDefined();
    } finally {
      redis.resume();
    }
    await untilReady();
    const after = await loginAs(rp, panda);
    expect(after.tokens.claims()?.sub).toBe(panda.unionid);
    // It kept its data: nothing is said to be lost (the one line is the restart's, above).
    expect(logLines(bridge, { text: EMPTIED })).toHaveLength(1);
  }, 60_000);

  test('PostgreSQL hung: a login waiting on it fails within the statement timeout instead of hanging, and service resumes', async () => {
    const person = await createSandboxUser(bridge, '挂起 Hung');
    const login = await startLogin(rp);
    // A login just before: the pool holds open connections, which the hang leaves open and silent
    // (a new connection would fail at the connect timeout instead).
    await loginAs(rp, panda);
    postgres.hang();
    try {
      // A scrape does not wait for the hung database (up to the statement timeout) to answer.
      const scrape = await fetch(`${bridge.url}/metrics`, { signal: AbortSignal.timeout(QUERY_TIMEOUT_MS) });
      expect(scrape.status).toBe(200);
      const callback = await Promise.race([
        decideOnWeChat(login, { user: person, allow: true }),
        setTimeout(QUERY_TIMEOUT_MS + 15_000).then(() => undefined),
      ]);
      expect(callback?.status).toBe(503);
      // The login's own failure page, not the gate's: the person can try again, or go back to the
      // application, which then hears an OAuth error instead of waiting for a login that never ends.
      expect(callback?.body).toContain('id="try-again"');
      expect(callback?.body).toContain('/abort"');
    } finally {
      postgres.unhang();
    }
    await untilReady();
    const after = await loginAs(rp, person);
    expect(after.tokens.claims()?.sub).toBe(person.unionid);
  }, 60_000);

  // When PostgreSQL drops the connections, a pooled client handed out in the same tick as its
  // socket closes emits 'error' on itself: src/storage/postgres.ts listens, or the process would end.
  test('PostgreSQL down: /readyz names it, requests get 503, and service resumes when it is back', async () => {
    await postgres.cut();
    const down = await readiness();
    expect(down.status).toBe(503);
    expect(down.body.dependencies.database).toEqual({ kind: 'postgres', up: false });
    expect(down.body.dependencies.cache.up).toBe(true);
    const page = await loginPageAnswer();
    expect(page.status).toBe(503);
    const token = await tokenRequestStatus('whatever');
    expect(token.status).toBe(503);
    expect(token.body.error_description).toContain('account database (postgres)');
    // The scrape still answers, saying so: the outbox's count (a database query) keeps its last value.
    const scrape = await fetch(`${bridge.url}/metrics`);
    expect(scrape.status).toBe(200);
    const series = await scrape.text();
    expect(series).toContain('dependency_up{dependency="database"} 0');
    expect(series).toMatch(/\naccount_events_pending \d+\n/);

    await postgres.restore();
    await untilReady();
    const after = await loginAs(rp, panda);
    expect(after.tokens.claims()?.sub).toBe(panda.unionid);
    // The pool's connections, opened by earlier requests' queries, were lost: said once each,
    // naming no request (it is no request's doing).
    const lost = logLines(bridge, { msg: 'PostgreSQL connection lost' });
    expect(lost.length).toBeGreaterThan(0);
    for (const line of lost) expect(line).not.toContain('"requestId"');
  });
});
