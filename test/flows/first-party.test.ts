import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import {
  authorizationRequest,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  startLogin,
} from '../helpers/flow.ts';

const FIRST_PARTY = {
  ...RP,
  client_id: 'first-party-app',
  client_secret: 'first-party-secret-0123456789abcdefghij',
  first_party: true,
};

describe('a first-party client', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      configure: (c) => ({ ...c, clients: [...c.clients, FIRST_PARTY] }),
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });
  const relyingPartyOf = (client: { client_id: string; client_secret: string }) =>
    oidc.discovery(new URL(bridge.url), client.client_id, client.client_secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });

  test('skips the consent page: the WeChat callback leads straight back to the client', async () => {
    const rp = await relyingPartyOf(FIRST_PARTY);
    const user = await createSandboxUser(bridge, '李四');
    const login = await startLogin(rp, { scope: 'openid profile' });
    const callback = await decideOnWeChat(login, { user, allow: true });
    const pages: string[] = [];
    let hop = callback;
    while (hop.location && !hop.location.startsWith(RP.redirect_uris[0] as string)) {
      hop = await login.browser.request(hop.location);
      pages.push(hop.body);
    }
    expect(pages.some((body) => body.includes('id="consent-allow"'))).toBe(false);
    const tokens = await oidc.authorizationCodeGrant(rp, new URL(hop.location as string), login.checks);
    expect(tokens.claims()?.sub).toBe(user.unionid);
    expect(tokens.scope?.split(' ')).toEqual(expect.arrayContaining(['openid', 'profile']));
  });

  // OIDC Core 11 drops offline_access without prompt=consent "unless other conditions ... are in
  // place"; the operator's consent for its own applications is one (README, clients).
  test('gets a refresh token for offline_access without prompt=consent, silently too', async () => {
    const rp = await relyingPartyOf(FIRST_PARTY);
    const user = await createSandboxUser(bridge, '赵六');
    const login = await startLogin(rp, { scope: 'openid offline_access' });
    const redirect = await continueToRp(login, await decideOnWeChat(login, { user, allow: true }));
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
    expect(tokens.scope?.split(' ').sort()).toEqual(['offline_access', 'openid']);
    const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
    expect(refreshed.claims()?.sub).toBe(user.unionid);

    // prompt=none in the same browser: no page at all, and the refresh token all the same.
    const silent = await authorizationRequest(rp, { scope: 'openid offline_access', prompt: 'none' });
    const back = await login.browser.follow(silent.url.href, { stopAt: RP.redirect_uris[0] as string });
    const again = await oidc.authorizationCodeGrant(rp, new URL(back.location as string), silent.checks);
    expect(again.refresh_token).toBeTruthy();

    // A third-party client's same request loses the scope, as the engine has it.
    const thirdParty = await relyingPartyOf(RP);
    const other = await startLogin(thirdParty, { scope: 'openid offline_access' });
    const otherBack = await continueToRp(other, await decideOnWeChat(other, { user, allow: true }));
    const otherTokens = await oidc.authorizationCodeGrant(thirdParty, otherBack, other.checks);
    expect(otherTokens.refresh_token).toBeUndefined();
    expect(otherTokens.scope?.split(' ')).toEqual(['openid']);
  });

  test('while a third-party client, for the same person, is asked for consent', async () => {
    const rp = await relyingPartyOf(RP);
    const user = await createSandboxUser(bridge, '王五');
    const login = await startLogin(rp, { scope: 'openid profile' });
    let hop = await decideOnWeChat(login, { user, allow: true });
    while (hop.location) hop = await login.browser.request(hop.location);
    expect(hop.body).toContain('id="consent-allow"');
  });
});
