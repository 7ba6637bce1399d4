import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, RP, startAnotherInstance, startBridge, storageAvailable } from '../helpers/bridge.ts';
import {
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';

const available = await storageAvailable('postgres+redis');

/** How many times each race is run: the two requests meet in either order, or one after the other. */
const ROUNDS = 5;

/**
 * A code or refresh token presented twice at the same moment, at two instances: one of the two
 * holders is an attacker, and the grant is revoked, as when the second use comes later
 * (src/oidc/reuse-revocation.ts). Before, the refused one was answered invalid_grant and the
 * winner's tokens lived on.
 */
describe.skipIf(!available)('a code or refresh token used at two instances at once', () => {
  let first: Bridge;
  let second: Bridge;
  let rp: oidc.Configuration;
  let user: SandboxUser;

  beforeAll(async () => {
    first = await startBridge({ storage: 'postgres+redis' });
    second = await startAnotherInstance(first, { configure: (config) => ({ ...config, issuer: first.url }) });
    rp = await relyingParty(first);
    user = await createSandboxUser(first, '同时两用');
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
  });

  const basic = `Basic ${Buffer.from(`${RP.client_id}:${encodeURIComponent(RP.client_secret)}`).toString('base64')}`;
  /** The token endpoint of one instance, as the relying party's server calls it. */
  const token = async (bridge: Bridge, params: Record<string, string>) => {
    const answer = await fetch(`${bridge.instanceUrl}/token`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    return { status: answer.status, body: (await answer.json()) as Record<string, string> };
  };
  const userinfoStatus = async (accessToken: string) =>
    (await fetch(`${first.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
  /** Both instances at once; the one answer with tokens. */
  const race = async (params: Record<string, string>) => {
    const answers = await Promise.all([token(first, params), token(second, params)]);
    expect(answers.map((answer) => answer.status).sort()).toEqual([200, 400]);
    expect(answers.find((answer) => answer.status === 400)?.body.error).toBe('invalid_grant');
    return answers.find((answer) => answer.status === 200)?.body as Record<string, string>;
  };
  /** The winner's tokens: neither its access token nor its refresh token works. */
  const expectRevoked = async (tokens: Record<string, string>) => {
    expect(await userinfoStatus(tokens.access_token as string)).toBe(401);
    const refreshed = await token(first, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token as string,
    });
    expect(refreshed).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  };

  test('an authorization code: one answer gets tokens, which are revoked with the grant', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const login = await startLogin(rp, { scope: 'openid offline_access', prompt: 'consent' });
      const redirect = await continueToRp(login, await decideOnWeChat(login, { user, allow: true }));
      const winner = await race({
        grant_type: 'authorization_code',
        code: redirect.searchParams.get('code') as string,
        redirect_uri: RP.redirect_uris[0] as string,
        code_verifier: login.checks.pkceCodeVerifier as string,
      });
      await expectRevoked(winner);
    }
  });

  test('a refresh token: one answer gets new tokens, which are revoked with the grant', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { tokens } = await loginAs(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
      const winner = await race({
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token as string,
      });
      await expectRevoked(winner);
      expect(await userinfoStatus(tokens.access_token)).toBe(401);
    }
  });
});
