import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, RP, STORAGE_SETUPS, startBridge, storageAvailable } from '../helpers/bridge.ts';
import { TestBrowser } from '../helpers/browser.ts';
import {
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  type LoginChecks,
  loginStarted,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';

/**
 * Two standards oidc-provider offers and discovery advertises, which relying parties may use
 * without asking: pushed authorization requests (RFC 9126), whose parameters reach the login page
 * from the store instead of the URL, and DPoP (RFC 9449), whose sender-constrained tokens are
 * refused without their proof.
 */
describe.each(STORAGE_SETUPS)('pushed authorization requests and DPoP (%s)', (storage) => {
  let bridge: Bridge;
  let person: SandboxUser;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    if (!(await storageAvailable(storage))) throw new Error(`${storage} is not available`);
    bridge = await startBridge({ storage });
    person = await createSandboxUser(bridge, '周九');
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('discovery advertises both', () => {
    const metadata = rp.serverMetadata();
    expect(metadata.pushed_authorization_request_endpoint).toBe(`${bridge.url}/request`);
    expect(metadata.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']));
  });

  test('a pushed authorization request leads to the WeChat login page and logs the person in', async () => {
    const checks: LoginChecks = {
      expectedState: oidc.randomState(),
      expectedNonce: oidc.randomNonce(),
      pkceCodeVerifier: oidc.randomPKCECodeVerifier(),
    };
    const url = await oidc.buildAuthorizationUrlWithPAR(rp, {
      redirect_uri: RP.redirect_uris[0] as string,
      scope: 'openid profile',
      state: checks.expectedState,
      nonce: checks.expectedNonce as string,
      code_challenge: await oidc.calculatePKCECodeChallenge(checks.pkceCodeVerifier as string),
      code_challenge_method: 'S256',
    });
    // Only the client and the reference travel through the browser.
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri']);
    const browser = new TestBrowser();
    const login = loginStarted(browser, checks, await browser.follow(url.href));
    const redirect = await continueToRp(login, await decideOnWeChat(login, { user: person, allow: true }));
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, checks);
    expect(tokens.claims()?.sub).toBe(person.unionid);
    expect(tokens.claims()?.nonce).toBe(checks.expectedNonce);

    // A request_uri is good for one authorization request.
    const again = await new TestBrowser().follow(url.href);
    expect(again.body).not.toContain('id="wechat-qr"');
    expect(again.status).toBeLessThan(500);
  });

  test('a pushed authorization request from a client with a wrong secret is refused', async () => {
    const impostor = await relyingParty(bridge, { ...RP, client_secret: 'not-the-secret-0123456789abcdef' });
    await expect(
      oidc.buildAuthorizationUrlWithPAR(impostor, {
        redirect_uri: RP.redirect_uris[0] as string,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      }),
    ).rejects.toMatchObject({ error: 'invalid_client' });
  });

  test('DPoP-bound access tokens work with their proof at userinfo, and not without it', async () => {
    const dpop = oidc.getDPoPHandle(rp, await oidc.randomDPoPKeyPair('ES256'));
    const login = await startLogin(rp, { scope: 'openid profile offline_access', prompt: 'consent' });
    const redirect = await continueToRp(login, await decideOnWeChat(login, { user: person, allow: true }));
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks, undefined, { DPoP: dpop });
    expect(tokens.token_type.toLowerCase()).toBe('dpop');
    const sub = tokens.claims()?.sub as string;
    expect(sub).toBe(person.unionid);

    const claims = await oidc.fetchUserInfo(rp, tokens.access_token, sub, { DPoP: dpop });
    expect(claims.sub).toBe(person.unionid);

    // Presented as a plain bearer token, the bound token is refused.
    const asBearer = await fetch(`${bridge.url}/me`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(asBearer.status).toBe(401);
    expect(asBearer.headers.get('www-authenticate')).toMatch(/invalid_token/);

    // A refresh with the proof gets DPoP-bound tokens again. The refresh token itself is bound to
    // this confidential client's authentication, not to the key (RFC 9449 section 5): without a
    // proof the client gets bearer tokens.
    expect(tokens.refresh_token).toBeDefined();
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string, undefined, {
      DPoP: dpop,
    });
    expect(refreshed.token_type.toLowerCase()).toBe('dpop');
    const unbound = await oidc.refreshTokenGrant(rp, refreshed.refresh_token as string);
    expect(unbound.token_type.toLowerCase()).toBe('bearer');
  });
});
