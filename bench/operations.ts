import * as oidc from 'openid-client';
import { Agent, request } from 'undici';
import type { ClientConfig } from '../src/config/types.ts';
import { JS_CODE_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE } from '../src/oidc/token-exchange/constants.ts';
import { RP } from '../test/helpers/bridge.ts';
import { TestBrowser } from '../test/helpers/browser.ts';
import {
  type AuthorizationOptions,
  authorizationRequest,
  consentAction,
  continueToRp,
  decideOnWeChat,
  type SandboxUser,
  startLogin,
} from '../test/helpers/flow.ts';
import type { Algorithm, BenchClient, Engine } from './spec.ts';

/** Tokens a worker holds between operations. */
export interface HeldTokens {
  accessToken: string;
  refreshToken: string | undefined;
}

/**
 * A full login, as a browser does it, ending with the code exchanged at the token endpoint.
 *
 * Bridge: authorize (answered with the login page), the sandbox's authorize form (the QR page's
 * "allow"), the WeChat callback (code exchange and userinfo happen there, server side), consent when
 * the client is not first-party, the redirect back, and the token call: every request, with cookies.
 * Bare engine: authorize, the interaction route (which logs in at once), the redirect back, the
 * token call.
 */
export async function login(
  engine: Engine,
  rp: oidc.Configuration,
  options: LoginOptions & { alg: Algorithm },
): Promise<HeldTokens> {
  const tokens = engine === 'bridge' ? await bridgeLogin(rp, options) : await bareLogin(rp, options);
  expectAlg(tokens.id_token, options.alg);
  return { accessToken: tokens.access_token, refreshToken: tokens.refresh_token };
}

export type LoginOptions = AuthorizationOptions & {
  user: SandboxUser;
  /** Whether the bridge must show the consent page after the WeChat callback (checked when set). */
  consentPage?: boolean;
};

async function bridgeLogin(
  rp: oidc.Configuration,
  options: LoginOptions,
): Promise<oidc.TokenEndpointResponse> {
  const login = await startLogin(rp, options);
  const callback = await decideOnWeChat(login, { user: options.user, allow: true });
  // The callback answers with the consent page itself when one follows; anything else goes on to
  // the resume.
  const toPage = consentAction(callback) !== undefined;
  if (options.consentPage !== undefined && toPage !== options.consentPage) {
    throw new Error(`the WeChat callback led to ${toPage ? 'a' : 'no'} consent page`);
  }
  const redirect = await continueToRp(login, callback);
  return oidc.authorizationCodeGrant(rp, redirect, login.checks);
}

async function bareLogin(rp: oidc.Configuration, options: AuthorizationOptions) {
  const { url, checks } = await authorizationRequest(rp, options);
  const hop = await new TestBrowser().follow(url.href, { stopAt: RP.redirect_uris[0] });
  if (!hop.location?.startsWith(RP.redirect_uris[0] as string)) {
    throw new Error(`bare login stopped at ${new URL(hop.url).pathname} (status ${hop.status})`);
  }
  return oidc.authorizationCodeGrant(rp, new URL(hop.location), checks);
}

/**
 * The token, userinfo and introspection calls a relying party makes, on raw undici with keep-alive
 * (lighter than fetch, so the load generator stays ahead of the server it measures).
 */
export class TokenCalls {
  readonly #dispatcher: Agent;
  readonly #endpoints: { token: string; userinfo: string; introspection: string };

  constructor(rp: oidc.Configuration, connections: number) {
    const metadata = rp.serverMetadata();
    if (!metadata.token_endpoint || !metadata.userinfo_endpoint || !metadata.introspection_endpoint) {
      throw new Error('discovery did not list the token, userinfo and introspection endpoints');
    }
    this.#endpoints = {
      token: metadata.token_endpoint,
      userinfo: metadata.userinfo_endpoint,
      introspection: metadata.introspection_endpoint,
    };
    this.#dispatcher = new Agent({ connections, keepAliveTimeout: 30_000 });
  }

  /** refresh_token grant; the rotated refresh token replaces the held one. */
  async refresh(client: BenchClient, held: HeldTokens, alg: Algorithm): Promise<void> {
    if (!held.refreshToken) throw new Error('no refresh token held');
    const body = await this.#post(this.#endpoints.token, client, {
      grant_type: 'refresh_token',
      refresh_token: held.refreshToken,
    });
    expectAlg(body.id_token, alg);
    held.refreshToken = stringField(body, 'refresh_token', 'refresh_token grant');
    held.accessToken = stringField(body, 'access_token', 'refresh_token grant');
  }

  /**
   * A mini-program login: wx.login() in the sandbox (the phone's part, not timed), then the exchange
   * of its code at the token endpoint (timed: the bridge calls jscode2session and issues tokens).
   * Resolves to the exchange's latency.
   */
  async miniProgramLogin(sandboxUrl: string, user: SandboxUser, client: ClientConfig): Promise<number> {
    const wxLogin = await request(`${sandboxUrl}/sandbox/mini-program/login`, {
      method: 'POST',
      dispatcher: this.#dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ appid: client.wechat_mini_program_appid, user: user.id }),
    });
    const { code } = (await wxLogin.body.json()) as { code?: string };
    if (wxLogin.statusCode >= 300 || !code) throw new Error(`sandbox wx.login: HTTP ${wxLogin.statusCode}`);
    const started = performance.now();
    const response = await request(this.#endpoints.token, {
      method: 'POST',
      dispatcher: this.#dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
        subject_token: code,
        subject_token_type: JS_CODE_TOKEN_TYPE,
        client_id: client.client_id,
        scope: 'openid profile',
      }).toString(),
    });
    const body = (await response.body.json()) as Record<string, unknown>;
    if (response.statusCode !== 200) {
      throw new Error(`token exchange: HTTP ${response.statusCode} ${String(body.error ?? '')}`);
    }
    expectAlg(body.id_token, 'RS256');
    return performance.now() - started;
  }

  async userinfo(held: HeldTokens): Promise<void> {
    const response = await request(this.#endpoints.userinfo, {
      dispatcher: this.#dispatcher,
      headers: { authorization: `Bearer ${held.accessToken}` },
    });
    const body = (await response.body.json()) as Record<string, unknown>;
    if (response.statusCode !== 200 || typeof body.sub !== 'string') {
      throw new Error(`userinfo: HTTP ${response.statusCode} ${String(body.error ?? '')}`);
    }
  }

  async introspect(client: BenchClient, held: HeldTokens): Promise<void> {
    const body = await this.#post(this.#endpoints.introspection, client, { token: held.accessToken });
    if (body.active !== true) throw new Error('introspection: the access token is not active');
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }

  async #post(url: string, client: BenchClient, form: Record<string, string>) {
    const response = await request(url, {
      method: 'POST',
      dispatcher: this.#dispatcher,
      headers: {
        authorization: basicAuth(client),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(form).toString(),
    });
    const body = (await response.body.json()) as Record<string, unknown>;
    if (response.statusCode !== 200) {
      throw new Error(`${new URL(url).pathname}: HTTP ${response.statusCode} ${String(body.error ?? '')}`);
    }
    return body;
  }
}

/** client_secret_basic (RFC 6749 2.3.1: form-encode, then base64). */
function basicAuth(client: BenchClient): string {
  const id = encodeURIComponent(client.client_id);
  const secret = encodeURIComponent(client.client_secret);
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

function stringField(body: Record<string, unknown>, name: string, what: string): string {
  const value = body[name];
  if (typeof value !== 'string') throw new Error(`${what}: no ${name} in the answer`);
  return value;
}

/** The ID token must be signed with the client's algorithm, or the scenario measures the wrong key. */
function expectAlg(idToken: unknown, alg: Algorithm): void {
  if (typeof idToken !== 'string') throw new Error('no id_token in the answer');
  const header = JSON.parse(Buffer.from(idToken.split('.')[0] ?? '', 'base64url').toString()) as {
    alg?: string;
  };
  if (header.alg !== alg) throw new Error(`id_token signed with ${header.alg}, expected ${alg}`);
}
