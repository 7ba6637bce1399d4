import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClientConfig } from '../../src/config/types.ts';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import { TestBrowser } from '../helpers/browser.ts';
import {
  type AuthorizationOptions,
  authorizationRequest,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';

/** A single-page app: no secret, so nothing but PKCE binds its code. */
const PUBLIC_CLIENT = {
  client_id: 'test-spa',
  redirect_uris: ['https://spa.example.test/callback'],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  first_party: true,
} satisfies ClientConfig;

/** A confidential client whose operator asked PKCE of it whatever it sends. */
const STRICT_CLIENT = {
  ...RP,
  client_id: 'test-strict-rp',
  client_secret: 'test-strict-rp-secret-0123456789abcdef',
  require_pkce: true,
} satisfies ClientConfig;

/**
 * Which authorization requests must carry PKCE (src/oidc/pkce-policy.ts). Relying parties as they
 * come (Debian's mod_auth_openidc, authlib) send a nonce and no PKCE.
 */
describe('PKCE, or a nonce for confidential OpenID Connect clients', () => {
  let bridge: Bridge;
  let person: SandboxUser;
  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      configure: (c) => ({ ...c, clients: [...c.clients, PUBLIC_CLIENT, STRICT_CLIENT] }),
    });
    person = await createSandboxUser(bridge, '钱七');
  });
  afterAll(async () => {
    await bridge?.close();
  });

  /** The bridge's answer to an authorization request that it refuses before any page. */
  async function refusal(rp: oidc.Configuration, options: AuthorizationOptions) {
    const { url, checks } = await authorizationRequest(rp, options);
    const hop = await new TestBrowser().request(url.href);
    expect(hop.location, `status ${hop.status}: ${hop.body.slice(0, 200)}`).toBeDefined();
    const answer = new URL(hop.location as string);
    expect(answer.searchParams.get('state')).toBe(checks.expectedState);
    return answer;
  }

  test('a confidential client logs in with a nonce and no PKCE, the nonce checked in the ID token', async () => {
    const rp = await relyingParty(bridge);
    const login = await startLogin(rp, { pkce: false });
    expect(login.checks.pkceCodeVerifier).toBeUndefined();
    const redirect = await continueToRp(login, await decideOnWeChat(login, { user: person, allow: true }));
    const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
    expect(tokens.claims()?.sub).toBe(person.unionid);
    expect(tokens.claims()?.nonce).toBe(login.checks.expectedNonce);
  });

  test('a code issued without a challenge is refused with a code_verifier (no PKCE downgrade)', async () => {
    const rp = await relyingParty(bridge);
    const login = await startLogin(rp, { pkce: false });
    const redirect = await continueToRp(login, await decideOnWeChat(login, { user: person, allow: true }));
    const forged = { ...login.checks, pkceCodeVerifier: oidc.randomPKCECodeVerifier() };
    await expect(oidc.authorizationCodeGrant(rp, redirect, forged)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
  });

  test('a confidential client with neither PKCE nor a nonce is refused, told what would do', async () => {
    const answer = await refusal(await relyingParty(bridge), { pkce: false, nonce: false });
    expect(answer.origin + answer.pathname).toBe(RP.redirect_uris[0]);
    expect(answer.searchParams.get('error')).toBe('invalid_request');
    expect(answer.searchParams.get('error_description')).toMatch(/PKCE.*nonce/);
  });

  test('a request without the openid scope is no OpenID Connect request: PKCE is required', async () => {
    const rp = await relyingParty(bridge);
    // Plain OAuth, no nonce: our policy's refusal, in its words.
    const plain = await refusal(rp, { pkce: false, nonce: false, scope: 'profile' });
    expect(plain.searchParams.get('error')).toBe('invalid_request');
    expect(plain.searchParams.get('error_description')).toBe(
      'PKCE (code_challenge) is required; a confidential OpenID Connect client may send nonce instead',
    );
    // A nonce does not make it one: oidc-provider refuses a nonce without openid before any PKCE policy.
    const withNonce = await refusal(rp, { pkce: false, scope: 'profile' });
    expect(withNonce.searchParams.get('error')).toBe('invalid_request');
    expect(withNonce.searchParams.get('error_description')).toBe(
      'openid scope must be requested when using the nonce parameter',
    );
  });

  test('a public client needs PKCE even with a nonce', async () => {
    const spa = await oidc.discovery(new URL(bridge.url), PUBLIC_CLIENT.client_id, {}, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const redirectUri = PUBLIC_CLIENT.redirect_uris[0] as string;
    const answer = await refusal(spa, { pkce: false, redirectUri });
    expect(answer.origin + answer.pathname).toBe(redirectUri);
    expect(answer.searchParams.get('error')).toBe('invalid_request');
    expect(answer.searchParams.get('error_description')).toMatch(/PKCE/);

    // With PKCE the same client logs in.
    const login = await startLogin(spa, { redirectUri });
    const hop = await decideOnWeChat(login, { user: person, allow: true });
    const redirect = await continueToRp(login, hop, redirectUri);
    const tokens = await oidc.authorizationCodeGrant(spa, redirect, login.checks);
    expect(tokens.claims()?.sub).toBe(person.unionid);
  });

  test('require_pkce: a confidential client that asked for it needs PKCE even with a nonce', async () => {
    const strict = await relyingParty(bridge, STRICT_CLIENT);
    const answer = await refusal(strict, { pkce: false });
    expect(answer.searchParams.get('error')).toBe('invalid_request');
    expect(answer.searchParams.get('error_description')).toMatch(/PKCE/);
  });
});
