import * as oidc from 'openid-client';
import { type Bridge, RP } from './bridge.ts';
import { attributeOf, decodeEntities, type Hop, TestBrowser } from './browser.ts';

export interface SandboxUser {
  id: string;
  nickname: string;
  unionid: string;
  openids: Record<string, string>;
  avatarUrl: string;
}

/**
 * Creates a fake WeChat user through the sandbox's control API (as a developer would).
 * `allowControlCharacters`: the nickname may hold NUL, BEL and the like (the sandbox refuses them otherwise).
 */
export async function createSandboxUser(
  bridge: Pick<Bridge, 'sandboxUrl'>,
  nickname: string,
  options: { allowControlCharacters?: boolean; avatarColor?: string | null } = {},
): Promise<SandboxUser> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ nickname, ...options }),
  });
  if (response.status >= 300)
    throw new Error(`sandbox user creation failed: ${response.status} ${await response.text()}`);
  return (await response.json()) as SandboxUser;
}

/** Binds an app to the Open Platform account or unbinds it (unbound: WeChat names no unionid), from now on. */
export async function setBoundToOpenPlatform(
  bridge: Pick<Bridge, 'sandboxUrl'>,
  appid: string,
  bound: boolean,
): Promise<void> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/settings`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ boundToOpenPlatform: { [appid]: bound } }),
  });
  if (response.status !== 200) throw new Error(`settings: ${response.status} ${await response.text()}`);
}

/** Injects a failure into the sandbox's next calls of one API. */
export async function injectFault(bridge: Bridge, fault: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
  if (response.status >= 300)
    throw new Error(`fault injection failed: ${response.status} ${await response.text()}`);
}

/** How many faults of this API are still waiting to fire (the sandbox uses one per call). */
export async function pendingFaults(bridge: Bridge, api: string): Promise<number> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/faults`);
  const { faults } = (await response.json()) as { faults: Array<{ api: string; times: number }> };
  return faults.filter((fault) => fault.api === api).reduce((sum, fault) => sum + fault.times, 0);
}

/** openid-client, configured by discovery against the bridge, as a relying party would be. */
export async function relyingParty(
  bridge: Pick<Bridge, 'url'>,
  client: { client_id: string; client_secret: string; id_token_signed_response_alg?: string } = RP,
): Promise<oidc.Configuration> {
  const metadata: Partial<oidc.ClientMetadata> = { client_secret: client.client_secret };
  // openid-client expects RS256 ID tokens unless told otherwise.
  if (client.id_token_signed_response_alg)
    metadata.id_token_signed_response_alg = client.id_token_signed_response_alg;
  return oidc.discovery(new URL(bridge.url), client.client_id, metadata, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
}

export interface StartedLogin {
  browser: TestBrowser;
  checks: LoginChecks;
  /** The login page the bridge rendered (the authorization request's own answer). */
  loginPage: Hop;
  /** The QR iframe's URL (the sandbox's qrconnect page). */
  qrUrl: URL;
  /** The interaction's page, /interaction/:uid: where the consent page and "try again" lead. */
  interactionUrl: string;
}

/**
 * The login a browser landed on: the QR iframe the page embeds, and the interaction it belongs to
 * (the parent of the WeChat callback the QR sends the person back to).
 */
export function loginStarted(browser: TestBrowser, checks: LoginChecks, loginPage: Hop): StartedLogin {
  const src = attributeOf(loginPage.body, 'wechat-qr', 'src');
  if (!src)
    throw new Error(
      `no QR iframe at ${loginPage.url} (status ${loginPage.status}): ${loginPage.body.slice(0, 500)}`,
    );
  const qrUrl = new URL(src);
  const callback = qrUrl.searchParams.get('redirect_uri') ?? '';
  const interactionUrl = callback.replace(/\/wechat-callback(\?.*)?$/, '');
  if (interactionUrl === callback) throw new Error(`unexpected WeChat redirect_uri ${callback}`);
  return { browser, checks, loginPage, qrUrl, interactionUrl };
}

/** The uid of the interaction a login is in. */
export const interactionUid = (login: StartedLogin): string =>
  new URL(login.interactionUrl).pathname.split('/')[2] as string;

/** What openid-client checks on the way back: PKCE and nonce only when the request used them. */
export interface LoginChecks {
  pkceCodeVerifier?: string;
  expectedState: string;
  expectedNonce?: string;
}

export interface AuthorizationOptions {
  scope?: string;
  prompt?: string;
  extra?: Record<string, string>;
  /** Send code_challenge (default true). */
  pkce?: boolean;
  /** Send nonce (default true). */
  nonce?: boolean;
  /** Where the client wants the answer (default the test RP's). */
  redirectUri?: string;
}

/** The relying party's authorization request (PKCE, state, nonce) and what it checks on return. */
export async function authorizationRequest(
  rp: oidc.Configuration,
  options: AuthorizationOptions = {},
): Promise<{ url: URL; checks: LoginChecks }> {
  const checks: LoginChecks = { expectedState: oidc.randomState() };
  const params: Record<string, string> = {
    redirect_uri: options.redirectUri ?? (RP.redirect_uris[0] as string),
    scope: options.scope ?? 'openid profile',
    state: checks.expectedState,
  };
  if (options.pkce ?? true) {
    checks.pkceCodeVerifier = oidc.randomPKCECodeVerifier();
    params.code_challenge = await oidc.calculatePKCECodeChallenge(checks.pkceCodeVerifier);
    params.code_challenge_method = 'S256';
  }
  if (options.nonce ?? true) {
    checks.expectedNonce = oidc.randomNonce();
    params.nonce = checks.expectedNonce;
  }
  if (options.prompt) params.prompt = options.prompt;
  const url = oidc.buildAuthorizationUrl(rp, { ...params, ...options.extra });
  return { url, checks };
}

/** The relying party starts a login; the browser follows it to our login page. */
export async function startLogin(
  rp: oidc.Configuration,
  options: AuthorizationOptions & { browser?: TestBrowser } = {},
): Promise<StartedLogin> {
  const browser = options.browser ?? new TestBrowser();
  const { url, checks } = await authorizationRequest(rp, options);
  return loginStarted(browser, checks, await browser.follow(url.href));
}

/**
 * The person decides on the sandbox's QR page (the form the page posts), and the browser follows
 * WeChat's redirect back to the bridge. Returns the bridge's answer to the callback, without
 * following further.
 */
export async function decideOnWeChat(
  login: StartedLogin,
  decision: { user: SandboxUser | string; allow: boolean },
): Promise<Hop> {
  return login.browser.request((await callbackFromWeChat(login, decision)).href);
}

/**
 * The person's decision on the sandbox's QR page (the form the page posts): the callback URL WeChat
 * redirects to, not yet delivered, for tests that deliver it themselves.
 */
export async function callbackFromWeChat(
  login: StartedLogin,
  decision: { user: SandboxUser | string; allow: boolean },
): Promise<URL> {
  const q = login.qrUrl.searchParams;
  const form: Record<string, string> = {
    appid: q.get('appid') ?? '',
    redirect_uri: q.get('redirect_uri') ?? '',
    state: q.get('state') ?? '',
    scope: q.get('scope') ?? '',
    self_redirect: q.get('self_redirect') ?? 'default',
    lang: q.get('lang') ?? 'cn',
    user: typeof decision.user === 'string' ? decision.user : decision.user.id,
    decision: decision.allow ? 'allow' : 'deny',
  };
  const answer = await login.browser.request(`${login.qrUrl.origin}/connect/sandbox/authorize`, { form });
  if (!answer.location) throw new Error(`sandbox did not redirect (status ${answer.status})`);
  return new URL(answer.location);
}

/** Where the consent page's allow form posts, when `hop` answered with that page. */
export function consentAction(hop: Hop): string | undefined {
  if (!hop.body.includes('id="consent-allow"')) return undefined;
  const action = /<form method="post" action="([^"]+\/consent)"/.exec(hop.body)?.[1];
  if (!action) throw new Error(`a consent page without its form at ${hop.url}`);
  return new URL(action, hop.url).href;
}

/**
 * The form of oidc-provider's self-submitting page (its form_post helper, our page around it:
 * src/oidc/pages.ts), when `hop` is one.
 */
function selfSubmittingForm(hop: Hop): { action: string; fields: Record<string, string> } | undefined {
  const action = /<form method="post" action="([^"]+)" id="op\.formPost">/.exec(hop.body)?.[1];
  if (!action) return undefined;
  const fields: Record<string, string> = {};
  for (const [, name, value] of hop.body.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/>/g))
    fields[name as string] = decodeEntities(value as string);
  return { action: new URL(decodeEntities(action), hop.url).href, fields };
}

/**
 * From the bridge's answer to the callback, on through consent (allowing) to the RP's redirect_uri
 * (the test RP's, or `redirectUri`).
 */
export async function continueToRp(
  login: StartedLogin,
  hop: Hop,
  redirectUri: string = RP.redirect_uris[0] as string,
): Promise<URL> {
  let current = hop;
  for (let i = 0; i < 10; i++) {
    if (current.location?.startsWith(redirectUri)) return new URL(current.location);
    if (current.location) {
      current = await login.browser.request(current.location);
      continue;
    }
    // oidc-provider's self-submitting form (a login as another person than the browser's session
    // ends that session first, at /session/end/confirm): submitted as a browser's script does.
    const selfSubmitting = selfSubmittingForm(current);
    if (selfSubmitting) {
      current = await login.browser.request(selfSubmitting.action, {
        method: 'POST',
        form: selfSubmitting.fields,
      });
      continue;
    }
    // The consent page, wherever it was answered (its interaction's page, or the WeChat callback
    // itself): its allow form says where it posts.
    const allow = consentAction(current);
    if (!allow)
      throw new Error(`stuck at ${current.url} (status ${current.status}): ${current.body.slice(0, 300)}`);
    current = await login.browser.request(allow, { method: 'POST', form: {} });
  }
  throw new Error('did not reach the relying party');
}

/** A whole login: start, scan and allow as `user`, consent, and the code exchanged by openid-client. */
export async function loginAs(
  rp: oidc.Configuration,
  user: SandboxUser,
  options: { scope?: string; prompt?: string; browser?: TestBrowser } = {},
) {
  const login = await startLogin(rp, options);
  const callback = await decideOnWeChat(login, { user, allow: true });
  const redirect = await continueToRp(login, callback);
  const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
  return { login, redirect, tokens };
}
