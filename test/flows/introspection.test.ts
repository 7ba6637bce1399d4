import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClientConfig } from '../../src/config/types.ts';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import { createSandboxUser, loginAs, relyingParty } from '../helpers/flow.ts';

/** Another relying party of the same provider: it must learn nothing about RP's users. */
const OTHER_RP: ClientConfig & { client_secret: string } = {
  ...RP,
  client_id: 'other-rp',
  client_secret: 'other-rp-secret-0123456789abcdefghij',
};
/** An API that accepts the access tokens RP's users bring it. */
const API: ClientConfig & { client_secret: string } = {
  client_id: 'orders-api',
  client_secret: 'orders-api-secret-0123456789abcdefgh',
  grant_types: [],
  response_types: [],
  redirect_uris: [],
  resource_server: true,
};

/** A public client (a single-page app): PKCE, no secret. */
const PUBLIC_RP: ClientConfig = {
  client_id: 'public-spa',
  redirect_uris: RP.redirect_uris,
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
};

describe('introspection and revocation: who may learn about or revoke a token', () => {
  let bridge: Bridge;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, clients: [...config.clients, OTHER_RP, API, PUBLIC_RP] }),
    });
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('the client the token was issued to and a resource server may; another client may not', async () => {
    const user = await createSandboxUser(bridge, 'Introspected');
    const { tokens } = await loginAs(rp, user, { scope: 'openid profile offline_access', prompt: 'consent' });
    for (const token of [tokens.access_token, tokens.refresh_token as string]) {
      const own = await oidc.tokenIntrospection(rp, token);
      expect(own).toMatchObject({ active: true, sub: user.unionid, client_id: RP.client_id });

      const other = await oidc.tokenIntrospection(await relyingParty(bridge, OTHER_RP), token);
      expect(other).toEqual({ active: false });
    }
    const api = await oidc.tokenIntrospection(await relyingParty(bridge, API), tokens.access_token);
    expect(api).toMatchObject({ active: true, sub: user.unionid, client_id: RP.client_id });
  });

  test('a public client may not introspect, not even its own token: its client_id is no authorization', async () => {
    const spa = await oidc.discovery(new URL(bridge.url), PUBLIC_RP.client_id, {}, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const user = await createSandboxUser(bridge, 'Public');
    const { tokens } = await loginAs(spa, user, { scope: 'openid' });
    expect(tokens.claims()?.sub).toBe(user.unionid);
    expect(await oidc.tokenIntrospection(spa, tokens.access_token)).toEqual({ active: false });
    // The token itself is good: an API registered as a resource server learns whose it is.
    const api = await oidc.tokenIntrospection(await relyingParty(bridge, API), tokens.access_token);
    expect(api).toMatchObject({ active: true, sub: user.unionid, client_id: PUBLIC_RP.client_id });
  });

  test('only the client a token was issued to may revoke it; another is refused and the token lives on', async () => {
    const user = await createSandboxUser(bridge, 'Revoked');
    const { tokens } = await loginAs(rp, user, { scope: 'openid profile offline_access', prompt: 'consent' });
    const other = await relyingParty(bridge, OTHER_RP);
    await expect(oidc.tokenRevocation(other, tokens.access_token)).rejects.toMatchObject({
      error: 'invalid_request',
    });
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(true);

    await oidc.tokenRevocation(rp, tokens.refresh_token as string);
    expect((await oidc.tokenIntrospection(rp, tokens.refresh_token as string)).active).toBe(false);
    // Revoking a refresh token revokes its grant, and with it the access token.
    expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
  });
});
