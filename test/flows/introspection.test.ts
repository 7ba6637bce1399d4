import type { webcrypto } from 'node:crypto';
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

/** A confidential client of each kind of authentication, logging in as RP does. */
function clientAuthenticatingWith(method: string, extra: Partial<ClientConfig> = {}): ClientConfig {
  return {
    client_id: `auth-${method}`,
    client_secret: `${method}-secret-0123456789abcdefghijklmnopqrstuvwxyz`,
    redirect_uris: RP.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: method as ClientConfig['token_endpoint_auth_method'],
    ...extra,
  };
}

describe('discovery names how clients authenticate at introspection and revocation, and each way works', () => {
  let bridge: Bridge;
  let assertionKey: webcrypto.CryptoKeyPair;
  const clients = new Map<string, ClientConfig>();

  beforeAll(async () => {
    assertionKey = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const publicJwk = await crypto.subtle.exportKey('jwk', assertionKey.publicKey);
    clients.set('client_secret_basic', clientAuthenticatingWith('client_secret_basic'));
    clients.set('client_secret_post', clientAuthenticatingWith('client_secret_post'));
    clients.set('client_secret_jwt', clientAuthenticatingWith('client_secret_jwt'));
    clients.set(
      'private_key_jwt',
      clientAuthenticatingWith('private_key_jwt', {
        client_secret: undefined,
        jwks: { keys: [{ ...publicJwk, kid: 'assertion-1', alg: 'ES256', use: 'sig' }] },
      }),
    );
    clients.set('none', { ...PUBLIC_RP, client_id: 'auth-none' });
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, clients: [...config.clients, API, ...clients.values()] }),
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  /** openid-client, configured by discovery, authenticating as `method` says. */
  function relyingPartyUsing(method: string): Promise<oidc.Configuration> {
    const client = clients.get(method);
    if (!client) throw new Error(`no test client for ${method}`);
    const secret = client.client_secret as string;
    const authentication = {
      client_secret_basic: () => oidc.ClientSecretBasic(secret),
      client_secret_post: () => oidc.ClientSecretPost(secret),
      client_secret_jwt: () => oidc.ClientSecretJwt(secret),
      private_key_jwt: () => oidc.PrivateKeyJwt({ key: assertionKey.privateKey, kid: 'assertion-1' }),
      none: () => oidc.None(),
    }[method];
    if (!authentication) throw new Error(`openid-client has no ${method}`);
    return oidc.discovery(new URL(bridge.url), client.client_id, {}, authentication(), {
      execute: [oidc.allowInsecureRequests],
    });
  }

  // Regression: both were omitted, which RFC 8414 section 2 reads as client_secret_basic only,
  // while every method of the token endpoint works at both.
  test('the same methods and algorithms as the token endpoint', async () => {
    const metadata = (await (await fetch(`${bridge.url}/.well-known/openid-configuration`)).json()) as Record<
      string,
      string[]
    >;
    const methods = metadata.token_endpoint_auth_methods_supported;
    expect([...(methods ?? [])].sort()).toEqual([...clients.keys()].sort());
    for (const endpoint of ['introspection', 'revocation']) {
      expect(metadata[`${endpoint}_endpoint_auth_methods_supported`]).toEqual(methods);
      expect(metadata[`${endpoint}_endpoint_auth_signing_alg_values_supported`]).toEqual(
        metadata.token_endpoint_auth_signing_alg_values_supported,
      );
    }
  });

  test.each(['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'])(
    '%s introspects and revokes its own token',
    async (method) => {
      const rp = await relyingPartyUsing(method);
      const user = await createSandboxUser(bridge, `Auth ${method}`);
      const { tokens } = await loginAs(rp, user, { scope: 'openid' });
      const introspected = await oidc.tokenIntrospection(rp, tokens.access_token);
      // A public client is authenticated, and told nothing (its client_id is no authorization).
      if (method === 'none') expect(introspected).toEqual({ active: false });
      else
        expect(introspected).toMatchObject({
          active: true,
          sub: user.unionid,
          client_id: rp.clientMetadata().client_id,
        });
      const api = await relyingParty(bridge, API as ClientConfig & { client_secret: string });
      expect((await oidc.tokenIntrospection(api, tokens.access_token)).active).toBe(true);
      await oidc.tokenRevocation(rp, tokens.access_token);
      expect((await oidc.tokenIntrospection(api, tokens.access_token)).active).toBe(false);
    },
  );
});

describe('token lifetimes', () => {
  const GRANT_TTL = 600;
  let bridge: Bridge;
  let rp: oidc.Configuration;

  beforeAll(async () => {
    // Refresh tokens would live a day, the grant they belong to ten minutes.
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({
        ...config,
        oidc: { ...config.oidc, ttl: { ...config.oidc.ttl, grant: GRANT_TTL, refreshToken: 86_400 } },
      }),
    });
    rp = await relyingParty(bridge);
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('a refresh token does not outlive its grant, nor does the one a refresh rotates to', async () => {
    const user = await createSandboxUser(bridge, 'Short grant');
    const { tokens } = await loginAs(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
    const refreshToken = tokens.refresh_token as string;
    const stored = await bridge.server.stores.oidcAdapter('RefreshToken').find(refreshToken);
    const grant = await bridge.server.stores.oidcAdapter('Grant').find(stored?.grantId as string);
    const grantExp = grant?.exp as number;
    expect(grantExp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + GRANT_TTL);

    const first = await oidc.tokenIntrospection(rp, refreshToken);
    expect(first.active).toBe(true);
    expect(first.exp).toBeLessThanOrEqual(grantExp);
    const rotated = await oidc.refreshTokenGrant(rp, refreshToken);
    const second = await oidc.tokenIntrospection(rp, rotated.refresh_token as string);
    expect(second.active).toBe(true);
    expect(second.exp).toBeLessThanOrEqual(grantExp);
  });
});
