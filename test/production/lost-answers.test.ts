import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { COMMAND_TIMEOUT_MS } from '../../src/storage/redis/connect.ts';
import {
  type Bridge,
  logLines,
  RP,
  startBridge,
  storageAvailable,
  WEBSITE_AND_MINI_PROGRAM,
} from '../helpers/bridge.ts';
import {
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { callMiniProgram, exchangeJsCode, miniProgramClient, wxLogin } from '../helpers/mini-program.ts';
import { bridgeBehindRedisRelay } from '../helpers/redis-relay.ts';
import type { TcpRelay } from './tcp-relay.ts';

const available = await storageAvailable('postgres+redis');

/**
 * A Redis answer lost in the middle of a token request (an outside review's fault injection, through
 * a relay in front of Redis): the client's refresh token must survive it. Before, the consume landed
 * and its answer was lost, then either ioredis sent it again after reconnecting (the copy read the
 * token as spent by someone else: invalid_grant, and the grant revoked as for a replay) or the
 * request failed with a 503 whose retry found the token spent (the same revocation).
 */
async function userinfoStatus(bridge: Bridge, accessToken: string): Promise<number> {
  const answer = await fetch(`${bridge.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  return answer.status;
}

describe.skipIf(!available)('lost Redis answers', () => {
  let relay: TcpRelay;
  let bridge: Bridge;
  let rp: oidc.Configuration;
  let person: SandboxUser;

  beforeAll(async () => {
    ({ relay, bridge } = await bridgeBehindRedisRelay());
    rp = await relyingParty(bridge);
    person = await createSandboxUser(bridge, '丢失 Lost');
  }, 30_000);
  afterAll(async () => {
    await bridge?.close();
    await relay?.close();
  });

  /** The request that spends a refresh token: a script run (EVALSHA) naming it. */
  const spendsRefreshToken = (request: Buffer) => {
    const text = request.toString('latin1').toLowerCase();
    return text.includes('evalsha') && text.includes('oidc:refreshtoken:');
  };

  /** A logged-in client's refresh token, after one refresh (so the scripts are loaded in Redis). */
  async function refreshToken(): Promise<string> {
    const { tokens } = await loginAs(rp, person, { scope: 'openid offline_access', prompt: 'consent' });
    const once = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    return once.refresh_token as string;
  }

  /** Asks /readyz until it answers 200 (the failure made the instance probe its stores). */
  async function untilReady(): Promise<void> {
    for (let attempt = 0; attempt < 40; attempt++) {
      if ((await fetch(`${bridge.url}/readyz`)).status === 200) return;
    }
    throw new Error('the bridge did not become ready again');
  }

  test('a consume whose answer is lost and which ioredis sends again still refreshes', async () => {
    const token = await refreshToken();
    relay.loseAnswerAfter(spendsRefreshToken, { holdMs: 50 });
    const refreshed = await oidc.refreshTokenGrant(rp, token);
    expect(refreshed.claims()?.sub).toBe(person.unionid);
    expect(await userinfoStatus(bridge, refreshed.access_token)).toBe(200);
    // The chain goes on from the new token.
    const next = await oidc.refreshTokenGrant(rp, refreshed.refresh_token as string);
    expect(next.claims()?.sub).toBe(person.unionid);
  }, 30_000);

  test('a connection that goes silent while Redis itself answers is replaced: service resumes by itself', async () => {
    const { tokens } = await loginAs(rp, person, { scope: 'openid' });
    // What a NAT or firewall that forgot the connection does: the socket stays open, nothing arrives.
    relay.hangOpenConnections();
    try {
      const during = await fetch(`${bridge.url}/me`, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
        signal: AbortSignal.timeout(4 * COMMAND_TIMEOUT_MS + 5000),
      });
      // Answered once the silent connection is replaced (its commands sent again on the new one),
      // or refused with a 503 if that took longer than the command's own timeout.
      expect([200, 503]).toContain(during.status);
      // Without the relay's connections ever answering again.
      await untilReady();
      expect(await userinfoStatus(bridge, tokens.access_token)).toBe(200);
    } finally {
      relay.unhang();
    }
  }, 60_000);

  test("Redis not answering as the WeChat callback claims its code: the login's failure page, 503, and trying again works", async () => {
    const login = await startLogin(rp);
    relay.loseAnswerAfter((request) => request.toString('latin1').includes('wechat-code:'), { hold: true });
    let page: Awaited<ReturnType<typeof decideOnWeChat>>;
    try {
      page = await decideOnWeChat(login, { user: person, allow: true });
    } finally {
      relay.unhang();
    }
    expect(page.status).toBe(503);
    expect(page.body).toContain('登录未完成');
    expect(page.body).toContain('id="try-again"');
    await untilReady();
    const again = await loginAs(rp, person, { scope: 'openid' });
    expect(again.tokens.claims()?.sub).toBe(person.unionid);
  }, 30_000);

  test('a token request that fails after spending its refresh token gives it back: the retry works', async () => {
    const token = await refreshToken();
    relay.loseAnswerAfter(spendsRefreshToken, { hold: true });
    let failed: Response;
    try {
      failed = await fetch(`${bridge.url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }),
        signal: AbortSignal.timeout(4 * COMMAND_TIMEOUT_MS + 5000),
      });
    } finally {
      relay.unhang();
    }
    expect(failed.status).toBeGreaterThanOrEqual(500);
    await untilReady();
    // As the 503 asks: the same refresh token again.
    const retried = await oidc.refreshTokenGrant(rp, token);
    expect(retried.claims()?.sub).toBe(person.unionid);
    expect(await userinfoStatus(bridge, retried.access_token)).toBe(200);
  }, 60_000);
});

/**
 * The embedded store's side of giving back: a refresh whose access token cannot be saved fails
 * after its refresh token was spent, and the retry works (src/oidc/single-use.ts, the SQLite
 * adapter's consumed_by).
 */
describe('a failed token request on the embedded store', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    bridge = await startBridge({ storage: 'embedded' });
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('gives back the refresh token it spent: the retry works', async () => {
    const person = await createSandboxUser(bridge, '嵌入 Embedded');
    const { tokens } = await loginAs(rp, person, { scope: 'openid offline_access', prompt: 'consent' });
    const sqlite = bridge.server.stores.sqlite;
    if (!sqlite) throw new Error('not an embedded bridge');
    sqlite.exec(`create trigger no_access_tokens before insert on oidc_artifacts
      when new.model = 'AccessToken' begin select raise(abort, 'refused (test)'); end`);
    try {
      const failed = await fetch(`${bridge.url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({
          grant_type: 'refresh_token',
          refresh_token: tokens.refresh_token as string,
        }),
      });
      expect(failed.status).toBe(500);
    } finally {
      sqlite.exec('drop trigger no_access_tokens');
    }
    const retried = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    expect(retried.claims()?.sub).toBe(person.unionid);
    expect(await userinfoStatus(bridge, retried.access_token)).toBe(200);
  });
});

/** The mini program's own endpoints, when Redis does not answer their token's lookup. */
describe.skipIf(!available)('a mini-program endpoint whose store does not answer', () => {
  let relay: TcpRelay;
  let bridge: Bridge;
  let mp: oidc.Configuration;
  beforeAll(async () => {
    ({ relay, bridge } = await bridgeBehindRedisRelay(WEBSITE_AND_MINI_PROGRAM));
    mp = await miniProgramClient(bridge);
  }, 30_000);
  afterAll(async () => {
    await bridge?.close();
    await relay?.close();
  });

  test('answers 503 temporarily_unavailable saying its storage did not answer, logged as a warning, and works once it answers', async () => {
    const person = await createSandboxUser(bridge, '小程序 Silent');
    const tokens = await exchangeJsCode(mp, await wxLogin(bridge, person));
    relay.loseAnswerAfter((request) => request.toString('latin1').includes('oidc:AccessToken:'), {
      hold: true,
    });
    let answer: Awaited<ReturnType<typeof callMiniProgram>>;
    try {
      answer = await callMiniProgram(bridge, 'check-session', tokens.access_token);
    } finally {
      relay.unhang();
    }
    expect(answer.status).toBe(503);
    expect(answer.body.error).toBe('temporarily_unavailable');
    expect(answer.body.error_description).toContain('storage did not answer');
    expect(answer.headers.get('retry-after')).toBe('5');
    // An outage is a warning, not an error line that reads as a bug of ours.
    const requestId = answer.headers.get('x-request-id') as string;
    const lines = logLines(bridge, { text: requestId });
    expect(lines.some((line) => line.includes('"level":"error"'))).toBe(false);
    for (let attempt = 0; attempt < 40; attempt++) {
      if ((await fetch(`${bridge.url}/readyz`)).status === 200) break;
    }
    const again = await callMiniProgram(bridge, 'check-session', tokens.access_token);
    expect(again.status).toBe(200);
  }, 30_000);
});
