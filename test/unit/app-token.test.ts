import { MockAgent } from 'undici';
import { describe, expect, it, vi } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createSealer } from '../../src/mini-program/sealer.ts';
import {
  type AppTokenCache,
  createAppTokenCache,
  refreshLockSeconds,
} from '../../src/upstream/wechat/app-token.ts';
import { type AppAccessToken, createMiniProgramApi } from '../../src/upstream/wechat/mini-program-api.ts';
import { UpstreamError, type WeChatApp } from '../../src/upstream/wechat/types.ts';
import { fakeTimeTaken } from '../helpers/fake-time.ts';
import { memoryKv } from '../helpers/memory-kv.ts';

const API = 'https://api.weixin.qq.com';
const TEXT = { headers: { 'content-type': 'text/plain' } };
const APP: WeChatApp = {
  kind: 'mini_program',
  appid: 'wx4f4bc4dec97d474b',
  name: 'Test',
  secret: new Secret('app-secret'),
};

/** WeChat's stable_token as §11 describes it, counting calls; answers resolve when the test says. */
function fakeWeChat(now: () => number) {
  let serial = 0;
  let current: { token: string; expiresAt: number } | undefined;
  const calls: boolean[] = [];
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  return {
    calls,
    hold() {
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
    },
    release: () => open(),
    async fetch(_app: WeChatApp, forceRefresh: boolean): Promise<AppAccessToken> {
      calls.push(forceRefresh);
      await gate;
      if (!current || forceRefresh || current.expiresAt - now() <= 300_000) {
        current = { token: `token-${++serial}`, expiresAt: now() + 7_200_000 };
      }
      return {
        accessToken: new Secret(current.token),
        expiresIn: Math.ceil((current.expiresAt - now()) / 1000),
      };
    },
  };
}

function setup() {
  let time = 1_700_000_000_000;
  const clock = { now: () => time, advance: (ms: number) => (time += ms) };
  const kv = memoryKv(clock.now);
  const wechat = fakeWeChat(clock.now);
  const sealer = createSealer([new Secret('cookie-key-0123456789abcdef')]);
  const instance = (): AppTokenCache =>
    createAppTokenCache({
      kv,
      codec: sealer,
      fetch: (app, force) => wechat.fetch(app, force),
      now: clock.now,
      sleep: async () => {
        // a waiting instance looks again once the winner has had a chance to finish
        await new Promise((resolve) => setImmediate(resolve));
      },
    });
  return { clock, kv, wechat, instance };
}

describe('the app access token cache', () => {
  it('fetches once for many concurrent requests on one instance, then serves from the cache', async () => {
    const { wechat, instance } = setup();
    const cache = instance();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => cache.get(APP)));
    expect(new Set(tokens.map((t) => t.reveal()))).toEqual(new Set(['token-1']));
    for (let i = 0; i < 50; i++) await cache.get(APP);
    expect(wechat.calls).toEqual([false]);
  });

  it('fetches once across instances sharing the store (single flight by lock)', async () => {
    const { wechat, instance } = setup();
    const instances = [instance(), instance(), instance()];
    wechat.hold();
    const pending = instances.flatMap((cache) => [cache.get(APP), cache.get(APP)]);
    await new Promise((resolve) => setImmediate(resolve));
    wechat.release();
    const tokens = await Promise.all(pending);
    expect(new Set(tokens.map((t) => t.reveal()))).toEqual(new Set(['token-1']));
    expect(wechat.calls).toHaveLength(1);
  });

  it('refreshes a few minutes before expiry, once, after stable_token has pre-rotated', async () => {
    const { wechat, instance, clock } = setup();
    const [a, b] = [instance(), instance()];
    expect((await a.get(APP)).reveal()).toBe('token-1');
    clock.advance(7_200_000 - 400_000); // 400 s left: still before the refresh margin
    expect((await b.get(APP)).reveal()).toBe('token-1');
    expect(wechat.calls).toHaveLength(1);
    clock.advance(250_000); // 150 s left: inside the margin, and WeChat has a new token
    const renewed = await Promise.all([a.get(APP), a.get(APP)]);
    expect(renewed.map((t) => t.reveal())).toEqual(['token-2', 'token-2']);
    expect((await b.get(APP)).reveal()).toBe('token-2');
    expect(wechat.calls).toHaveLength(2);
  });

  it('keeps serving the still-valid token while another instance refreshes it', async () => {
    const { wechat, instance, clock } = setup();
    const [a, b] = [instance(), instance()];
    await a.get(APP);
    clock.advance(7_200_000 - 100_000);
    wechat.hold();
    const refreshing = a.get(APP);
    await new Promise((resolve) => setImmediate(resolve));
    expect((await b.get(APP)).reveal()).toBe('token-1');
    wechat.release();
    expect((await refreshing).reveal()).toBe('token-2');
    expect(wechat.calls).toHaveLength(2);
  });

  it('on 40001 gets a new token once and retries once; a token WeChat hands back again is force-refreshed', async () => {
    const { wechat, instance } = setup();
    const cache = instance();
    const seen: string[] = [];
    const result = await cache.withToken(APP, async (token) => {
      seen.push(token.reveal());
      if (seen.length === 1) throw new UpstreamError('token_invalid', 'wxa/checksession', 40001);
      return 'ok';
    });
    expect(result).toBe('ok');
    // Normal mode returned the same (rejected) token, so the second fetch forced a new one.
    expect(seen).toEqual(['token-1', 'token-2']);
    expect(wechat.calls).toEqual([false, false, true]);
  });

  it('retries only once on 42001, and not at all on other errors', async () => {
    const { instance } = setup();
    const cache = instance();
    let calls = 0;
    await expect(
      cache.withToken(APP, async () => {
        calls++;
        throw new UpstreamError('token_invalid', 'wxa/checksession', 42001);
      }),
    ).rejects.toMatchObject({ errcode: 42001 });
    expect(calls).toBe(2);
    calls = 0;
    await expect(
      cache.withToken(APP, async () => {
        calls++;
        throw new UpstreamError('signature_invalid', 'wxa/checksession', 87009);
      }),
    ).rejects.toMatchObject({ errcode: 87009 });
    expect(calls).toBe(1);
  });

  it('stores the token sealed, never in the clear', async () => {
    const { kv, instance } = setup();
    await instance().get(APP);
    const stored = JSON.stringify([...kv.raw.values()]);
    expect(stored).not.toContain('token-1');
    expect(stored).toContain('v1.');
  });
});

describe('refreshLockSeconds', () => {
  // A lock that lapses while its refresh still runs lets another instance refresh too, a second
  // force_refresh within WeChat's 30 s among them (wechat-api.md §11).
  it.each([2_000, 5_000, 10_000])(
    'outlasts the slowest refresh still alive, with a WeChat timeout of %i ms',
    async (timeoutMs) => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const agent = new MockAgent();
      agent.disableNetConnect();
      try {
        const wechat = agent.get(API);
        const answer = (body: string, delayMs?: number) => {
          const scope = wechat
            .intercept({ path: '/cgi-bin/stable_token', method: 'POST' })
            .reply(200, body, TEXT);
          if (delayMs) scope.delay(delayMs);
        };
        const token = (value: string) => `{"access_token":"${value}","expires_in":7200}`;
        answer(token('bad'));
        // The refresh at its slowest: normal mode times out and is retried, only to hand back the
        // bad token; force_refresh answers busy (-1) and is retried; every attempt as slow as allowed.
        answer(token('bad'), 10 * timeoutMs);
        answer(token('bad'), timeoutMs - 1);
        answer('{"errcode":-1,"errmsg":"system error"}', timeoutMs - 1);
        answer(token('new'), timeoutMs - 1);
        const api = createMiniProgramApi({ apiBaseUrl: API, timeoutMs, dispatcher: agent });
        let time = 1_700_000_000_000;
        const cache = createAppTokenCache({
          kv: memoryKv(() => time),
          codec: createSealer([new Secret('cookie-key-0123456789abcdef')]),
          fetch: (app, force) => api.stableToken(app, force),
          now: () => time,
        });
        const first = cache.get(APP);
        await vi.advanceTimersByTimeAsync(0);
        expect((await first).reveal()).toBe('bad');

        const used: string[] = [];
        const call = cache.withToken(APP, async (t) => {
          used.push(t.reveal());
          if (t.reveal() === 'bad') throw new UpstreamError('token_invalid', 'x', 40001);
        });
        const elapsed = await fakeTimeTaken(call, (ms) => {
          time += ms;
        });
        await call;
        expect(used).toEqual(['bad', 'new']);
        expect(elapsed).toBeGreaterThan(4 * timeoutMs - 300);
        expect(refreshLockSeconds(timeoutMs) * 1000).toBeGreaterThan(elapsed);
      } finally {
        vi.useRealTimers();
        await agent.close();
      }
    },
  );
});
