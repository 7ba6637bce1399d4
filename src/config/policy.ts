import type { Findings } from './findings.ts';
import { field } from './raw.ts';

/**
 * Development-only settings: refused in production, warned about otherwise. Reads the raw file
 * (defaults are all "off") so the policy is reported together with schema problems.
 */
export function checkEnvironmentPolicy(raw: unknown, production: boolean, findings: Findings): void {
  const sandbox = field(raw, 'sandbox');
  const oidc = field(raw, 'oidc');

  if (field(sandbox, 'enabled') === true) {
    if (!production)
      findings.warn('sandbox.enabled', 'WeChat logins go to the built-in emulator (development only)');
    else if (field(sandbox, 'allowInProduction') === true) {
      findings.warn('sandbox.enabled', 'WeChat logins go to the built-in emulator, in production');
    } else {
      findings.problem(
        'sandbox.enabled',
        'the WeChat emulator is refused in production unless sandbox.allowInProduction is true',
      );
    }
  }

  if (field(field(raw, 'demo'), 'enabled') === true) {
    if (production) findings.problem('demo.enabled', 'the demo relying party is refused in production');
    else findings.warn('demo.enabled', 'the demo relying party is registered (development only)');
  }

  for (const name of ['jwks', 'cookieKeys'] as const) {
    if (field(oidc, name) !== undefined) continue;
    if (production)
      findings.problem(`oidc.${name}`, 'is required in production (generated keys are for development)');
    else findings.warn(`oidc.${name}`, 'not set: keys are generated into dataDir (development only)');
  }
}

/** What decides whether the issuer is reached over TLS: the effective values, after env overrides. */
export interface TransportSettings {
  production: boolean;
  issuer: string;
  trustProxy: boolean;
  behindTlsProxy: boolean;
}

/**
 * HTTPS in production. The issuer is where browsers bring cookies, WeChat codes and tokens, and what
 * relying parties compare byte for byte, so it must be https. This server speaks plain HTTP, so an
 * https issuer means a TLS-terminating proxy in front, which the config must name (behindTlsProxy);
 * behind it trustProxy must be on, or every request looks like plain HTTP to oidc-provider and its
 * secure cookies are refused. Returns [field, why] pairs; empty when the settings are sound.
 */
export function transportProblems(settings: TransportSettings): Array<[string, string]> {
  const problems: Array<[string, string]> = [];
  if (settings.production && !isHttps(settings.issuer)) {
    problems.push([
      'issuer',
      'must be an https:// URL in production: browsers send cookies, WeChat codes and tokens to it ' +
        'and relying parties verify it exactly (set issuer or ISSUER to the public https URL)',
    ]);
  } else if (settings.production && !settings.behindTlsProxy) {
    problems.push([
      'behindTlsProxy',
      'must be true in production: the issuer is https but this server speaks plain HTTP, so a ' +
        'TLS-terminating reverse proxy must be in front of it; say so with behindTlsProxy: true',
    ]);
  }
  if (settings.behindTlsProxy && !settings.trustProxy) {
    problems.push([
      'trustProxy',
      'must be true behind a TLS-terminating proxy (behindTlsProxy): without X-Forwarded-Proto every ' +
        'request looks like plain HTTP and secure cookies are refused',
    ]);
  }
  return problems;
}

/** transportProblems for the raw file and the environment's ISSUER, reported with everything else. */
export function checkTransportPolicy(
  raw: unknown,
  issuerOverride: string | undefined,
  production: boolean,
  findings: Findings,
): void {
  const fileIssuer = field(raw, 'issuer');
  const settings: TransportSettings = {
    production,
    // The default issuer is http://localhost:<port>: plain HTTP.
    issuer: issuerOverride ?? (typeof fileIssuer === 'string' ? fileIssuer : 'http://localhost'),
    trustProxy: field(raw, 'trustProxy') === true,
    behindTlsProxy: field(raw, 'behindTlsProxy') === true,
  };
  for (const [path, message] of transportProblems(settings)) findings.problem(path, message);
}

/**
 * WeChat refuses an Official Account authorization whose redirect_uri names a port (10003,
 * wechat-api.md section 3: the host must be exactly the 网页授权域名), and our callback is under the
 * issuer: with an Official Account app and a port in the issuer, no login inside WeChat can finish.
 * A problem in production, a warning otherwise; not checked while the sandbox takes WeChat's place.
 */
export function checkOfficialAccountCallback(
  settings: { issuer: string; appKinds: string[]; sandbox: boolean; production: boolean },
  findings: Findings,
): void {
  if (settings.sandbox || !settings.appKinds.includes('official_account')) return;
  if (!URL.canParse(settings.issuer) || new URL(settings.issuer).port === '') return;
  const message =
    'names a port, and WeChat refuses an Official Account authorization whose redirect_uri has one ' +
    '(errcode 10003): logins inside WeChat need the issuer on the default port of its scheme (443 for https)';
  if (settings.production) findings.problem('issuer', message);
  else findings.warn('issuer', message);
}

/**
 * The WeChat API is HTTPS only (it answers 43003 "require https"), and every call carries an
 * AppSecret, a login code, a token or a session key. A plain-http API base in production (a
 * forward proxy, say) is warned about rather than refused: the operator may know the hop is private.
 */
export function checkWeChatTransport(
  settings: { apiBaseUrl: string; sandbox: boolean; production: boolean },
  findings: Findings,
): void {
  if (!settings.production || settings.sandbox || isHttps(settings.apiBaseUrl)) return;
  findings.warn(
    'wechat.apiBaseUrl',
    'is not https: AppSecrets, login codes, tokens and session keys cross that hop unencrypted',
  );
}

/**
 * In production the URIs of a client that anything is sent to are https: an authorization response
 * carries the code (and a logout response the state) in the URL, a back-channel logout token and an
 * account event name the person, all readable on the way over plain http. A loopback address stays
 * allowed, as native apps listen there (RFC 8252 section 7.3), and never leaves the machine.
 */
export function checkClientRedirects(
  clients: ReadonlyArray<{
    redirect_uris?: string[];
    post_logout_redirect_uris?: string[];
    backchannel_logout_uri?: string;
    account_events_uri?: string;
  }>,
  production: boolean,
  findings: Findings,
): void {
  if (!production) return;
  for (const [index, client] of clients.entries()) {
    const uris: Array<[path: string, uri: string]> = [
      ...(['redirect_uris', 'post_logout_redirect_uris'] as const).flatMap((name) =>
        (client[name] ?? []).map((uri, at): [string, string] => [`clients[${index}].${name}[${at}]`, uri]),
      ),
      ...(['backchannel_logout_uri', 'account_events_uri'] as const).flatMap((name) => {
        const uri = client[name];
        return uri === undefined ? [] : [[`clients[${index}].${name}`, uri] as [string, string]];
      }),
    ];
    for (const [path, uri] of uris) {
      if (isHttps(uri) || isLoopback(uri)) continue;
      findings.problem(
        path,
        'must be https in production (plain http only for a loopback address, as native apps use)',
      );
    }
  }
}

function isLoopback(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { hostname } = new URL(url);
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

function isHttps(url: string): boolean {
  return URL.canParse(url) && new URL(url).protocol === 'https:';
}
