import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, storageAvailable } from '../helpers/bridge.ts';
import {
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { type BalancedPair, type LoadBalancer, startBalancedPair } from './load-balancer.ts';

const available = await storageAvailable('postgres+redis');

describe.skipIf(!available)('two instances on one PostgreSQL and Redis, behind a load balancer', () => {
  let lb: LoadBalancer;
  let first: Bridge;
  let rp: oidc.Configuration;
  let panda: SandboxUser;

  let pair: BalancedPair;

  beforeAll(async () => {
    pair = await startBalancedPair();
    ({ lb, first } = pair);
    rp = await relyingParty({ url: lb.url });
    panda = await createSandboxUser(first, '🐼 熊猫 Panda');
  });
  afterAll(async () => {
    await pair?.close();
  });

  const pin = (instance: number) => pair.pin(instance);

  /** Sends each request to the other instance than the one before. */
  function alternate(): void {
    let turn = 0;
    lb.pick = () => turn++ % 2;
  }

  test('a login whose WeChat callback lands on the other instance completes', async () => {
    alternate();
    const before = lb.served.length;
    const login = await startLogin(rp);
    const callback = await decideOnWeChat(login, { user: panda, allow: true });
    const redirect = await continueToRp(login, callback);
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);

    const served = lb.served.slice(before);
    // The authorization request answered with the login page; the callback came to the other instance.
    const page = served.find((s) => s.method === 'GET' && s.path === '/auth');
    const landed = served.find((s) => s.path.endsWith('/wechat-callback'));
    expect(page).toBeDefined();
    expect(landed?.instance).toBe(1 - (page?.instance ?? 0));
    expect(new Set(served.map((s) => s.instance))).toEqual(new Set([0, 1]));
    expect(tokens.claims()?.sub).toBe(panda.unionid);
    expect(tokens.claims()?.iss).toBe(lb.url);
  });

  test('logins with every step on alternating instances all succeed, each with its own sub', async () => {
    alternate();
    const people = await Promise.all(['甲', '乙', '丙', '丁'].map((name) => createSandboxUser(first, name)));
    for (const person of people) {
      const { tokens } = await loginAs(rp, person);
      expect(tokens.claims()?.sub).toBe(person.unionid);
    }
  });

  test('tokens issued by one instance are refreshed, introspected and revoked on the other', async () => {
    pin(0);
    const { tokens } = await loginAs(rp, panda, {
      scope: 'openid profile offline_access',
      prompt: 'consent',
    });
    expect(tokens.refresh_token).toBeTruthy();

    pin(1);
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(true);
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    expect(refreshed.claims()?.sub).toBe(panda.unionid);
    expect((await oidc.fetchUserInfo(rp, refreshed.access_token, panda.unionid)).sub).toBe(panda.unionid);

    pin(0);
    expect((await oidc.tokenIntrospection(rp, refreshed.refresh_token as string)).active).toBe(true);
    // The rotated-out refresh token is known as used on the instance that did not rotate it.
    await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token as string)).rejects.toMatchObject({
      error: 'invalid_grant',
    });

    pin(1);
    const { tokens: again } = await loginAs(rp, panda, {
      scope: 'openid profile offline_access',
      prompt: 'consent',
    });
    pin(0);
    await oidc.tokenRevocation(rp, again.refresh_token as string);
    pin(1);
    expect((await oidc.tokenIntrospection(rp, again.refresh_token as string)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(rp, again.refresh_token as string)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  test('an ID token signed by one instance verifies against the JWKS the other publishes', async () => {
    pin(0);
    const { tokens } = await loginAs(rp, panda);
    const kid = JSON.parse(
      Buffer.from((tokens.id_token as string).split('.')[0] as string, 'base64url').toString(),
    ).kid;
    pin(1);
    const jwks = (await (await fetch(`${lb.url}/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toContain(kid);
  });
});
