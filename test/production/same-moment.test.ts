import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { revokeApp, revokeEverything } from '../../src/accounts/revocation.ts';
import {
  type Bridge,
  MINI_PROGRAM_CLIENT,
  RP,
  startAnotherInstance,
  startBridge,
  storageAvailable,
  WEBSITE_AND_MINI_PROGRAM,
} from '../helpers/bridge.ts';
import {
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { callMiniProgram, JS_CODE, TOKEN_EXCHANGE, wxLogin } from '../helpers/mini-program.ts';

const available = await storageAvailable('postgres+redis');

/** How many times each race is run: the two requests meet in either order, or one after the other. */
const ROUNDS = 5;

/**
 * Two instances doing their parts of one person's business at the same moment (an outside review
 * raced them; these are what it found wrong):
 * - a code or refresh token presented twice at once: one of the two holders is an attacker, and the
 *   grant is revoked, as when the second use comes later (src/oidc/single-use.ts). Before,
 *   the refused one was answered invalid_grant and the winner's tokens lived on;
 * - revoking an app, or signing out everywhere, on one instance just after the other answered a
 *   login: its grant is found too (src/accounts/revocation.ts), which it was not before.
 */
describe.skipIf(!available)('two instances at the same moment', () => {
  let first: Bridge;
  let second: Bridge;
  let rp: oidc.Configuration;
  let user: SandboxUser;

  beforeAll(async () => {
    first = await startBridge({
      storage: 'postgres+redis',
      ...WEBSITE_AND_MINI_PROGRAM,
    });
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

  test('an authorization code used at both: one answer gets tokens, which are revoked with the grant', async () => {
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

  test('a refresh token used at both: one answer gets new tokens, which are revoked with the grant', async () => {
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

  /** The mini program's login answered by the second instance: its access token. */
  const miniProgramLogin = async () => {
    const answer = await fetch(`${second.instanceUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: TOKEN_EXCHANGE,
        subject_token: await wxLogin(second, user),
        subject_token_type: JS_CODE,
        client_id: MINI_PROGRAM_CLIENT.client_id,
        scope: 'openid',
      }),
    });
    const body = (await answer.json()) as { access_token: string };
    expect({ status: answer.status, body }).toMatchObject({ status: 200 });
    return body.access_token;
  };
  /** The first instance's account page's work, through its stores. */
  const revocation = () => ({ adapter: first.server.stores.oidcAdapter, db: first.server.stores.db });

  test("revoking an app on one instance right after the other answered the app's login revokes that login too", async () => {
    const accessToken = await miniProgramLogin();
    expect(await revokeApp(revocation(), user.unionid, MINI_PROGRAM_CLIENT.client_id)).toBe(true);
    expect((await callMiniProgram(first, 'check-session', accessToken)).status).toBe(401);
  });

  test('signing out everywhere on one instance right after the other answered a login ends that login too', async () => {
    const accessToken = await miniProgramLogin();
    const revoked = await revokeEverything(revocation(), user.unionid);
    expect(revoked.clientIds).toContain(MINI_PROGRAM_CLIENT.client_id);
    expect((await callMiniProgram(first, 'check-session', accessToken)).status).toBe(401);
  });
});
