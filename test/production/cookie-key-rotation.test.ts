import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import type { Config } from '../../src/config/types.ts';
import { type Bridge, startAnotherInstance, startBridge, storageAvailable } from '../helpers/bridge.ts';
import {
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { type LoadBalancer, startLoadBalancer } from './load-balancer.ts';

const available = await storageAvailable('postgres+redis');

/**
 * Cookie keys sign what one instance hands the browser and another must verify: the session
 * cookies, and the WeChat `state` of a login, which comes back at whichever instance the balancer
 * picks for the callback. README, "Keys and rotation": the new key is appended first (accepted
 * everywhere, signing nowhere), then moved to the top. Each step's rollout leaves instances of the
 * step before and of the step after side by side; here a login starts on one and its WeChat
 * callback lands on the other, both ways round.
 */
describe.skipIf(!available)('cookie key rotation, as the rolling restarts of its steps', () => {
  const oldKey = new Secret('the cookie key in use, thirty-two characters or more');
  const newKey = new Secret('the cookie key coming in, thirty-two characters or more');
  let lb: LoadBalancer;
  let first: Bridge;
  let rp: oidc.Configuration;
  let panda: SandboxUser;

  const withCookieKeys = (cookieKeys: Secret[]) => (config: Config) => ({
    ...config,
    issuer: lb.url,
    oidc: { ...config.oidc, cookieKeys },
  });

  beforeAll(async () => {
    lb = await startLoadBalancer();
    first = await startBridge({ storage: 'postgres+redis', configure: withCookieKeys([oldKey]) });
    // Discovery through the balancer, from the first instance (which only owns the stores).
    lb.targets = [first.instanceUrl];
    lb.pick = () => 0;
    rp = await relyingParty({ url: lb.url });
    panda = await createSandboxUser(first, '🐼 熊猫 Panda');
    // Allows the relying party once: the logins below have no consent page, only the callback.
    await loginAs(rp, panda, { scope: 'openid' });
  });
  afterAll(async () => {
    await lb?.close();
    await first?.close();
  });

  /**
   * Two instances with these keys behind the balancer: a login begins on `from` and WeChat's
   * callback (with everything after it) lands on the other. The callback's answer, and the person
   * logged in when it went on to the relying party.
   */
  async function loginAcross(keys: [Secret[], Secret[]], from: 0 | 1) {
    const instances = await Promise.all(
      keys.map((each) => startAnotherInstance(first, { configure: withCookieKeys(each) })),
    );
    try {
      lb.targets = instances.map((instance) => instance.instanceUrl);
      let calledBack = false;
      lb.pick = (_method, path) => {
        if (path.includes('/wechat-callback')) calledBack = true;
        return calledBack ? 1 - from : from;
      };
      const login = await startLogin(rp, { scope: 'openid' });
      const callback = await decideOnWeChat(login, { user: panda, allow: true });
      if (callback.status !== 303) return { status: callback.status, body: callback.body };
      const redirect = await continueToRp(login, callback);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      return { status: callback.status, sub: tokens.claims()?.sub };
    } finally {
      for (const instance of instances) await instance.close();
    }
  }

  test.each([
    ['step 1: the new key appended on one instance only', [oldKey, newKey], [oldKey]],
    [
      'step 2: the new key signing on one instance, appended on the other',
      [newKey, oldKey],
      [oldKey, newKey],
    ],
    ['step 3: the old key removed on one instance only', [newKey], [newKey, oldKey]],
  ] as const)('%s: logins that cross the two instances complete, both ways', async (_, a, b) => {
    for (const from of [0, 1] as const) {
      const login = await loginAcross([[...a], [...b]], from);
      expect(login, `login begun on instance ${from}`).toEqual({ status: 303, sub: panda.unionid });
    }
  });

  test('the new key put first in one step: an instance that does not know it yet refuses the callback', async () => {
    const login = await loginAcross([[newKey, oldKey], [oldKey]], 0);
    expect(login.status).toBe(400);
    expect(login.body).toContain('登录已超时或页面已失效');
  });
});
