import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Config } from '../../src/config/types.ts';
import { PACKAGE_ROOT } from '../../src/package-root.ts';
import {
  type Bridge,
  MINI_PROGRAM_APP,
  MINI_PROGRAM_CLIENT,
  RP,
  type StorageSetup,
  startBridge,
  storageAvailable,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { TestBrowser } from '../helpers/browser.ts';
import {
  createSandboxUser,
  interactionUid,
  loginAs,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import {
  callMiniProgram,
  exchangeJsCode,
  JS_CODE,
  miniProgramClient,
  TOKEN_EXCHANGE,
  wxLogin,
} from '../helpers/mini-program.ts';
import { type RawAnswer, type RawRequest, rawRequest } from '../helpers/raw-http.ts';

// Every route the server answers, sent what a careless or hostile client sends: repeated and
// bracketed parameters, empty and 10 kB values, broken percent-encoding, NUL and control
// characters, bytes that are not UTF-8, lone surrogates, wrong content types and encodings, wrong
// methods, unknown ids, junk cookies, Authorization and Host headers. Whatever the answer, it is
// no 5xx, no stack trace, source path or secret, and no error-level log line; a client endpoint's
// refusal is an OAuth error JSON, a person's page a readable HTML page. Each table row names its
// route and variant, and so does its test.

/**
 * What a row's answer must be, besides no 5xx, leak or error-level log line:
 * - page: a person's page: HTML with a title (a redirect aside);
 * - oauth: a client endpoint: any refusal is JSON with an `error`;
 * - 405: our route refuses the method, naming the methods it takes (Allow);
 * - 404: no route at that path, for any method (domain verification's file is a middleware);
 * - any: nothing more (probes, the stylesheet, an avatar, discovery, the JWKS).
 */
type Expectation = 'page' | 'oauth' | '405' | '404' | 'any';

type Header = [string, string | Buffer];

interface Row {
  route: string;
  variant: string;
  expect: Expectation;
  request(f: Fixture): RawRequest | Promise<RawRequest>;
  /** For a 405: the methods the route takes, each of which Allow must name. */
  allows?: readonly string[];
}

/** A login interaction in progress: its uid, the WeChat state its page issued, the browser's cookies. */
interface Login {
  uid: string;
  state: string;
  cookie: string;
}

/** What the rows need of the running stack, made once per storage setup. */
interface Fixture {
  bridge: Bridge;
  /** Cookies of a browser that has just logged in (recent enough to unbind and delete). */
  session: string;
  /** The account page's form token for that session. */
  csrf: string;
  accessToken: string;
  refreshToken: string;
  miniProgramToken: string;
  /** An interaction at its login step, for requests that leave it as it is. */
  interaction: Login;
  /** A new interaction, for a request that uses one up (a callback, an abort). */
  freshLogin(): Promise<Login>;
  /** The account page's own login under way: the state in its cookie, and the cookie. */
  accountLogin(): Promise<{ state: string; cookie: string }>;
  /** The demo relying party's login under way. */
  demoLogin(): Promise<{ state: string; cookie: string }>;
  /** Client secrets, AppSecrets, cookie keys and the signing keys' private parts. */
  secrets: string[];
}

const HTML = 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8';
const FORM = 'application/x-www-form-urlencoded';
const TEN_KB = 'a'.repeat(10_000);
const BASIC = `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}`;
const REDIRECT_URI = RP.redirect_uris[0] as string;
const UNKNOWN_UID = 'no-such-interaction';

const asPerson = (cookie?: string): Header[] => [
  ['accept', HTML],
  ...(cookie ? [['cookie', cookie] as Header] : []),
];
const asClient = (authorization?: string): Header[] => [
  ['accept', 'application/json'],
  ...(authorization ? [['authorization', authorization] as Header] : []),
];
const bearer = (token: string) => `Bearer ${token}`;
const get = (target: string, headers: Header[] = []): RawRequest => ({ target, headers });
const post = (target: string, body: string | Buffer, headers: Header[], type: string | undefined = FORM) => ({
  method: 'POST',
  target,
  body,
  headers: [...headers, ...(type === undefined ? [] : [['content-type', type] as Header])],
});

// --- Hostile values -------------------------------------------------------------------------------

/** One parameter made hostile, as written in a query string or a form body. */
const HOSTILE: Array<[variant: string, make: (name: string) => string]> = [
  ['repeated', (p) => `${p}=a&${p}=b`],
  ['array syntax p[]', (p) => `${p}[]=x`],
  ['object syntax p[a]', (p) => `${p}[a]=x&${p}[b][c]=y`],
  ['empty', (p) => `${p}=`],
  ['10 kB', (p) => `${p}=${TEN_KB}`],
  ['truncated UTF-8 %E4%B8', (p) => `${p}=%E4%B8`],
  ['invalid escapes %zz %', (p) => `${p}=%zz%`],
  ['NUL %00', (p) => `${p}=%00`],
  ['control characters', (p) => `${p}=%01%07%0D%0A%1B%7F`],
  ['not UTF-8: %FF%FE, a lone surrogate %ED%A0%80', (p) => `${p}=%FF%FE%C3%ED%A0%80`],
];

/**
 * In a form body also: a value just under our forms' 8 KiB (10 kB is past it, under the 64 KiB body
 * limit), and raw bytes, which Node refuses in a request target.
 */
const HOSTILE_FIELDS: typeof HOSTILE = [
  ...HOSTILE,
  ['6 kB', (p) => `${p}=${'b'.repeat(6_000)}`],
  ['raw non-UTF-8 and NUL bytes', (p) => `${p}=\xff\xfe\x00\xc3`],
];

/** `base` as a query or form string, with `param` replaced by its hostile form. */
function mix(base: Record<string, string>, param: string, hostile: string): string {
  const rest = Object.entries(base)
    .filter(([name]) => name !== param)
    .map(([name, value]) => `${name}=${encodeURIComponent(value)}`);
  return [...rest, hostile].join('&');
}

type Mixed = (base?: Record<string, string>) => string;

interface ParamRoute {
  route: string;
  expect: Expectation;
  params: string[];
  /** The request, its query or body built by `mixed` from a base of sound parameters. */
  request(f: Fixture, mixed: Mixed): RawRequest | Promise<RawRequest>;
}

function paramRows(routes: ParamRoute[], hostile: typeof HOSTILE): Row[] {
  return routes.flatMap((spec) =>
    spec.params.flatMap((param) =>
      hostile.map(([variant, make]) => ({
        route: spec.route,
        variant: `${param}: ${variant}`,
        expect: spec.expect,
        request: (f: Fixture) => spec.request(f, (base = {}) => mix(base, param, make(param))),
      })),
    ),
  );
}

// --- Query parameters -----------------------------------------------------------------------------

const AUTHORIZATION = {
  client_id: RP.client_id,
  response_type: 'code',
  redirect_uri: REDIRECT_URI,
  scope: 'openid profile',
  state: 'some-state',
  nonce: 'some-nonce',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  code_challenge_method: 'S256',
};

const QUERY_ROUTES: ParamRoute[] = [
  ...['/healthz', '/readyz', '/metrics', '/assets/app.css', '/MP_verify_abc123.txt', '/jwks'].map(
    (path): ParamRoute => ({
      route: `GET ${path}`,
      expect: 'any',
      params: ['x'],
      request: (_, q) => get(`${path}?${q()}`),
    }),
  ),
  {
    route: 'GET /.well-known/openid-configuration',
    expect: 'any',
    params: ['x'],
    request: (_, q) => get(`/.well-known/openid-configuration?${q()}`),
  },
  {
    route: 'GET /interaction/:uid (unknown uid)',
    expect: 'page',
    params: ['lang'],
    request: (_, q) => get(`/interaction/${UNKNOWN_UID}?${q()}`, asPerson()),
  },
  {
    route: 'GET /interaction/:uid',
    expect: 'page',
    params: ['lang'],
    request: (f, q) => get(`/interaction/${f.interaction.uid}?${q()}`, asPerson(f.interaction.cookie)),
  },
  {
    route: 'GET /interaction/:uid/wechat-authorize',
    expect: 'page',
    params: ['lang'],
    request: (f, q) =>
      get(`/interaction/${f.interaction.uid}/wechat-authorize?${q()}`, asPerson(f.interaction.cookie)),
  },
  {
    route: 'GET /interaction/:uid/wechat-callback (unknown uid)',
    expect: 'page',
    params: ['state', 'code'],
    request: (_, q) => get(`/interaction/${UNKNOWN_UID}/wechat-callback?${q()}`, asPerson()),
  },
  {
    route: 'GET /interaction/:uid/wechat-callback',
    expect: 'page',
    params: ['code', 'state'],
    request: async (f, q) => {
      const login = await f.freshLogin();
      const query = q({ state: login.state, code: 'some-code' });
      return get(`/interaction/${login.uid}/wechat-callback?${query}`, asPerson(login.cookie));
    },
  },
  {
    route: 'GET /account',
    expect: 'page',
    params: ['lang'],
    request: (f, q) => get(`/account?${q()}`, asPerson(f.session)),
  },
  {
    route: 'GET /account/login',
    expect: 'page',
    params: ['again', 'lang'],
    request: (_, q) => get(`/account/login?${q()}`, asPerson()),
  },
  {
    route: 'GET /account/callback (no login cookie)',
    expect: 'page',
    params: ['state', 'code'],
    request: (_, q) => get(`/account/callback?${q()}`, asPerson()),
  },
  {
    route: 'GET /account/callback',
    expect: 'page',
    params: ['code', 'state'],
    request: async (f, q) => {
      const login = await f.accountLogin();
      return get(`/account/callback?${q({ state: login.state, code: 'some-code' })}`, asPerson(login.cookie));
    },
  },
  ...['/account/login-again/delete', '/account/delete', '/account/logged-out'].map(
    (path): ParamRoute => ({
      route: `GET ${path}`,
      expect: 'page',
      params: ['lang'],
      request: (f, q) => get(`${path}?${q()}`, asPerson(f.session)),
    }),
  ),
  {
    route: 'GET /account/login-stopped',
    expect: 'page',
    params: ['why', 'again', 'lang'],
    request: (_, q) => get(`/account/login-stopped?${q()}`, asPerson()),
  },
  {
    route: 'GET /avatars/:accountId',
    expect: 'any',
    params: ['v'],
    request: (_, q) => get(`/avatars/${randomUUID()}?${q()}`),
  },
  ...['/demo', '/demo/login'].map(
    (path): ParamRoute => ({
      route: `GET ${path}`,
      expect: 'page',
      params: ['lang'],
      request: (_, q) => get(`${path}?${q()}`, asPerson()),
    }),
  ),
  {
    route: 'GET /demo/callback',
    expect: 'page',
    params: ['code', 'state', 'iss'],
    request: async (f, q) => {
      const login = await f.demoLogin();
      return get(`/demo/callback?${q({ state: login.state, code: 'some-code' })}`, asPerson(login.cookie));
    },
  },
  {
    route: 'GET /auth',
    expect: 'page',
    params: ['client_id', 'redirect_uri', 'scope', 'state', 'nonce', 'code_challenge', 'ui_locales'],
    request: (_, q) => get(`/auth?${q(AUTHORIZATION)}`, asPerson()),
  },
  {
    route: 'GET /auth (logged in)',
    expect: 'page',
    params: ['prompt', 'max_age', 'id_token_hint'],
    request: (f, q) => get(`/auth?${q(AUTHORIZATION)}`, asPerson(f.session)),
  },
  {
    route: 'GET /me',
    expect: 'oauth',
    params: ['scope'],
    request: (f, q) => get(`/me?${q()}`, asClient(bearer(f.accessToken))),
  },
  {
    route: 'GET /session/end',
    expect: 'page',
    params: ['id_token_hint', 'post_logout_redirect_uri', 'client_id', 'ui_locales'],
    request: (f, q) => get(`/session/end?${q()}`, asPerson(f.session)),
  },
  {
    route: 'GET /session/end/success',
    expect: 'page',
    params: ['client_id', 'state'],
    request: (_, q) => get(`/session/end/success?${q()}`, asPerson()),
  },
];

const QUERY_ROWS = paramRows(QUERY_ROUTES, HOSTILE);

// --- Form bodies ----------------------------------------------------------------------------------

const FORM_ROUTES: ParamRoute[] = [
  {
    route: 'POST /interaction/:uid/consent (unknown uid)',
    expect: 'page',
    params: ['x'],
    request: (_, b) => post(`/interaction/${UNKNOWN_UID}/consent`, b(), asPerson()),
  },
  {
    route: 'POST /interaction/:uid/consent',
    expect: 'page',
    params: ['x'],
    request: (f, b) => post(`/interaction/${f.interaction.uid}/consent`, b(), asPerson(f.interaction.cookie)),
  },
  {
    route: 'POST /interaction/:uid/abort (unknown uid)',
    expect: 'page',
    params: ['reason'],
    request: (_, b) => post(`/interaction/${UNKNOWN_UID}/abort`, b(), asPerson()),
  },
  {
    route: 'POST /interaction/:uid/abort',
    expect: 'page',
    params: ['reason'],
    request: async (f, b) => {
      const login = await f.freshLogin();
      return post(`/interaction/${login.uid}/abort`, b(), asPerson(login.cookie));
    },
  },
  // With the session and its valid form token, so that the hostile field reaches the action.
  {
    route: 'POST /account/apps/revoke',
    expect: 'page',
    params: ['clientId', 'csrf'],
    request: (f, b) =>
      post('/account/apps/revoke', b({ csrf: f.csrf, clientId: 'no-such-client' }), asPerson(f.session)),
  },
  ...['/account/unbind', '/account/unbind/confirm'].map(
    (path): ParamRoute => ({
      route: `POST ${path}`,
      expect: 'page',
      params: ['appid', 'openid'],
      request: (f, b) =>
        post(path, b({ csrf: f.csrf, appid: 'wxnosuchapp', openid: 'no-such-openid' }), asPerson(f.session)),
    }),
  ),
  {
    route: 'POST /account/delete',
    expect: 'page',
    params: ['csrf'],
    request: (f, b) => post('/account/delete', b({ csrf: f.csrf }), asPerson(f.session)),
  },
  // Never a plain confirm=yes, nor a valid token to sign out everywhere with: the sweep keeps its session.
  {
    route: 'POST /account/delete/confirm',
    expect: 'page',
    params: ['confirm', 'csrf'],
    request: (f, b) =>
      post('/account/delete/confirm', b({ csrf: f.csrf, confirm: 'no' }), asPerson(f.session)),
  },
  {
    route: 'POST /account/sign-out-everywhere',
    expect: 'page',
    params: ['csrf'],
    request: (f, b) => post('/account/sign-out-everywhere', b(), asPerson(f.session)),
  },
  {
    route: 'POST /session/end/confirm',
    expect: 'page',
    params: ['xsrf', 'logout'],
    request: (f, b) =>
      post('/session/end/confirm', b({ xsrf: 'not-the-token', logout: 'yes' }), asPerson(f.session)),
  },
  {
    route: 'POST /token (refresh_token)',
    expect: 'oauth',
    params: ['grant_type', 'refresh_token'],
    request: (_, b) =>
      post('/token', b({ grant_type: 'refresh_token', refresh_token: 'no-such-token' }), asClient(BASIC)),
  },
  {
    route: 'POST /token (authorization_code)',
    expect: 'oauth',
    params: ['code', 'code_verifier'],
    request: (_, b) =>
      post(
        '/token',
        b({
          grant_type: 'authorization_code',
          code: 'no-such-code',
          redirect_uri: REDIRECT_URI,
          code_verifier: 'a'.repeat(43),
        }),
        asClient(BASIC),
      ),
  },
  {
    route: 'POST /token (token exchange, public client)',
    expect: 'oauth',
    params: ['subject_token', 'client_id'],
    request: (_, b) =>
      post(
        '/token',
        b({
          grant_type: TOKEN_EXCHANGE,
          client_id: MINI_PROGRAM_CLIENT.client_id,
          subject_token: 'no-such-js-code',
          subject_token_type: JS_CODE,
        }),
        asClient(),
      ),
  },
  {
    route: 'POST /token (client_secret_post)',
    expect: 'oauth',
    params: ['client_id'],
    request: (_, b) =>
      post(
        '/token',
        b({
          grant_type: 'refresh_token',
          refresh_token: 'no-such-token',
          client_id: RP.client_id,
          client_secret: 'wrong',
        }),
        asClient(),
      ),
  },
  ...['/token/introspection', '/token/revocation'].map(
    (path): ParamRoute => ({
      route: `POST ${path}`,
      expect: 'oauth',
      params: ['token', 'token_type_hint'],
      request: (_, b) =>
        post(path, b({ token: 'no-such-token', token_type_hint: 'access_token' }), asClient(BASIC)),
    }),
  ),
  {
    route: 'POST /request (pushed authorization)',
    expect: 'oauth',
    params: ['redirect_uri', 'scope'],
    request: (_, b) => {
      const { client_id: _clientId, ...params } = AUTHORIZATION;
      return post('/request', b(params), asClient(BASIC));
    },
  },
  {
    route: 'POST /me',
    expect: 'oauth',
    params: ['access_token'],
    request: (_, b) => post('/me', b(), asClient()),
  },
];

const FORM_ROWS = paramRows(FORM_ROUTES, HOSTILE_FIELDS);

// --- Content types and encodings ------------------------------------------------------------------

const CONTENT: Array<{
  variant: string;
  type: string | undefined;
  body: string | Buffer;
  headers?: Header[];
}> = [
  { variant: 'JSON to a form endpoint', type: 'application/json', body: '{"reason":"declined","csrf":"x"}' },
  { variant: 'malformed JSON', type: 'application/json', body: '{"reason":' },
  { variant: 'JSON array', type: 'application/json', body: '[{"code":"x"}]' },
  { variant: 'JSON number', type: 'application/json', body: '42' },
  { variant: 'form as text/plain', type: 'text/plain', body: 'csrf=x&code=x' },
  {
    variant: 'multipart',
    type: 'multipart/form-data; boundary=b',
    body: '--b\r\nContent-Disposition: form-data; name="code"\r\n\r\nx\r\n--b--\r\n',
  },
  { variant: 'no Content-Type', type: undefined, body: 'csrf=x&code=x' },
  { variant: 'form to a JSON endpoint', type: FORM, body: 'code=x&csrf=x' },
  { variant: 'form, charset=latin1', type: `${FORM}; charset=latin1`, body: 'csrf=\xe9\xff&code=\xe9' },
  { variant: 'form, charset=utf-16', type: `${FORM}; charset=utf-16`, body: 'csrf=x&code=x' },
  { variant: 'form, unknown charset', type: `${FORM}; charset=no-such-charset`, body: 'csrf=x&code=x' },
  { variant: 'JSON, charset=latin1', type: 'application/json; charset=latin1', body: '{"code":"\xe9"}' },
  {
    variant: 'Content-Encoding gzip over plain bytes',
    type: FORM,
    body: 'csrf=x&code=x',
    headers: [['content-encoding', 'gzip']],
  },
  {
    variant: 'Content-Encoding br over plain bytes',
    type: FORM,
    body: 'csrf=x&code=x',
    headers: [['content-encoding', 'br']],
  },
  {
    variant: 'truncated gzip',
    type: 'application/json',
    body: gzipSync('{"code":"x"}').subarray(0, 12),
    headers: [['content-encoding', 'gzip']],
  },
  {
    variant: 'unknown Content-Encoding',
    type: FORM,
    body: 'csrf=x&code=x',
    headers: [['content-encoding', 'compress']],
  },
];

/** Routes that read a body: where it goes, as whom, and what a refusal looks like there. */
const BODY_ROUTES: Array<{
  route: string;
  expect: Expectation;
  target: string;
  headers(f: Fixture): Header[];
}> = [
  {
    route: 'POST /interaction/:uid/abort',
    expect: 'page',
    target: `/interaction/${UNKNOWN_UID}/abort`,
    headers: () => asPerson(),
  },
  {
    route: 'POST /interaction/:uid/consent',
    expect: 'page',
    target: `/interaction/${UNKNOWN_UID}/consent`,
    headers: () => asPerson(),
  },
  {
    route: 'POST /account/apps/revoke',
    expect: 'page',
    target: '/account/apps/revoke',
    headers: (f) => asPerson(f.session),
  },
  {
    route: 'POST /account/sign-out-everywhere',
    expect: 'page',
    target: '/account/sign-out-everywhere',
    headers: (f) => asPerson(f.session),
  },
  {
    route: 'POST /session/end/confirm',
    expect: 'page',
    target: '/session/end/confirm',
    headers: (f) => asPerson(f.session),
  },
  { route: 'POST /token', expect: 'oauth', target: '/token', headers: () => asClient(BASIC) },
  {
    route: 'POST /token/introspection',
    expect: 'oauth',
    target: '/token/introspection',
    headers: () => asClient(BASIC),
  },
  {
    route: 'POST /token/revocation',
    expect: 'oauth',
    target: '/token/revocation',
    headers: () => asClient(BASIC),
  },
  { route: 'POST /request', expect: 'oauth', target: '/request', headers: () => asClient(BASIC) },
  { route: 'POST /me', expect: 'oauth', target: '/me', headers: (f) => asClient(bearer(f.accessToken)) },
  ...['decrypt', 'phone-number', 'check-session'].map((name) => ({
    route: `POST /mini-program/${name}`,
    expect: 'oauth' as const,
    target: `/mini-program/${name}`,
    headers: (f: Fixture) => asClient(bearer(f.miniProgramToken)),
  })),
];

const CONTENT_ROWS: Row[] = BODY_ROUTES.flatMap((spec) =>
  CONTENT.map(({ variant, type, body, headers = [] }) => ({
    route: spec.route,
    variant,
    expect: spec.expect,
    request: (f: Fixture) => post(spec.target, body, [...spec.headers(f), ...headers], type),
  })),
);

// --- JSON bodies of the mini program's endpoints --------------------------------------------------

const JSON_BODIES: Array<[variant: string, body: string]> = [
  ['lone surrogates \\ud800 \\udfff', '{"code":"\\ud800","encryptedData":"\\ud800x","iv":"\\udfff"}'],
  ['lone surrogate as raw bytes', '{"code":"\xed\xa0\x80","encryptedData":"\xed\xa0\x80","iv":"x"}'],
  ['NUL \\u0000', '{"code":"\\u0000","encryptedData":"\\u0000","iv":"\\u0000"}'],
  // Alone, as a phone number's code (which the call to WeChat puts in a URL-encoded form).
  ['a lone surrogate as the only field', '{"code":"\\ud800x"}'],
  ['control characters', '{"code":"\\u0001\\u001b\\n","encryptedData":"\\u0007","iv":"\\r"}'],
  ['non-UTF-8 bytes', '{"code":"\xff\xfe\xc3","encryptedData":"\xff","iv":"\xfe"}'],
  ['malformed', '{"code":'],
  ['a JSON array', '[{"code":"x"}]'],
  ['a JSON number', '42'],
  ['a JSON string', '"x"'],
  ['null', 'null'],
  ['empty', ''],
  ['fields of the wrong type', '{"code":{"a":1},"encryptedData":[1],"iv":null,"rawData":7}'],
  ['unknown fields', '{"code":"x","encryptedData":"x","iv":"x","admin":true}'],
  ['__proto__', '{"__proto__":{"polluted":true},"code":"x","encryptedData":"x","iv":"x"}'],
  ['repeated keys', '{"code":"a","code":"b","iv":"a","iv":"b","encryptedData":"x"}'],
  ['10 kB values', JSON.stringify({ code: TEN_KB, encryptedData: TEN_KB, iv: TEN_KB })],
  ['5,000 nested arrays', `${'['.repeat(5_000)}${']'.repeat(5_000)}`],
];

const JSON_ROWS: Row[] = ['decrypt', 'phone-number'].flatMap((name) =>
  JSON_BODIES.map(([variant, body]) => ({
    route: `POST /mini-program/${name}`,
    variant,
    expect: 'oauth' as const,
    request: (f: Fixture) =>
      post(`/mini-program/${name}`, body, asClient(bearer(f.miniProgramToken)), 'application/json'),
  })),
);

// --- Methods --------------------------------------------------------------------------------------

/** Our routes and the methods they take (HEAD and OPTIONS with GET, as koa's router answers them). */
const OUR_ROUTES: Array<[path: string, methods: string[]]> = [
  ['/healthz', ['GET']],
  ['/readyz', ['GET']],
  ['/metrics', ['GET']],
  ['/assets/app.css', ['GET']],
  [`/interaction/${UNKNOWN_UID}`, ['GET']],
  [`/interaction/${UNKNOWN_UID}/wechat-authorize`, ['GET']],
  [`/interaction/${UNKNOWN_UID}/wechat-callback`, ['GET']],
  [`/interaction/${UNKNOWN_UID}/consent`, ['POST']],
  [`/interaction/${UNKNOWN_UID}/abort`, ['POST']],
  ['/account', ['GET']],
  ['/account/login', ['GET']],
  ['/account/callback', ['GET']],
  ['/account/login-again/delete', ['GET']],
  ['/account/login-stopped', ['GET']],
  ['/account/logged-out', ['GET']],
  ['/account/delete', ['GET', 'POST']],
  ['/account/apps/revoke', ['POST']],
  ['/account/sign-out-everywhere', ['POST']],
  ['/account/unbind', ['POST']],
  ['/account/unbind/confirm', ['POST']],
  ['/account/delete/confirm', ['POST']],
  ['/mini-program/decrypt', ['POST']],
  ['/mini-program/phone-number', ['POST']],
  ['/mini-program/check-session', ['POST']],
  ['/avatars/some-account', ['GET']],
  ['/demo', ['GET']],
  ['/demo/login', ['GET']],
  ['/demo/callback', ['GET']],
];

/** oidc-provider's routes and the methods they take (its router answers the others 405, with Allow). */
const PROVIDER_ROUTES: Array<[path: string, methods: string[]]> = [
  ['/auth', ['GET', 'POST']],
  [`/auth/${UNKNOWN_UID}`, ['GET']],
  ['/token', ['POST']],
  ['/me', ['GET', 'POST']],
  ['/token/introspection', ['POST']],
  ['/token/revocation', ['POST']],
  ['/request', ['POST']],
  ['/session/end', ['GET', 'POST']],
  ['/session/end/confirm', ['POST']],
  ['/session/end/success', ['GET']],
  ['/jwks', ['GET']],
  ['/.well-known/openid-configuration', ['GET']],
];

const WRONG_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'TRACE'];

const METHOD_ROWS: Row[] = (
  [
    ...[...OUR_ROUTES, ...PROVIDER_ROUTES].map(([path, methods]) => [path, methods, '405'] as const),
    // Domain verification's file is a middleware, not a route: another method goes on to
    // oidc-provider, which has no route at that path.
    ['/MP_verify_abc123.txt', ['GET'], '404'],
  ] as Array<[path: string, methods: string[], expectation: Expectation]>
).flatMap(([path, methods, expectation]) =>
  WRONG_METHODS.filter((method) => !methods.includes(method)).map((method) => ({
    route: `${methods.join('/')} ${path}`,
    variant: method,
    expect: expectation,
    allows: methods,
    request: (): RawRequest => ({
      method,
      target: path,
      headers: asPerson(),
      ...(method === 'GET' ? {} : { body: 'x=1' }),
    }),
  })),
);

// --- Paths: unknown ids, traversal, broken escapes ------------------------------------------------

const PATHS: Array<[route: string, target: string, expect: Expectation]> = [
  ...['%00', '%E4%B8', '%zz', '..%2f..%2fetc', `x${'a'.repeat(8_000)}`, '%ED%A0%80'].flatMap((uid) =>
    ['', '/wechat-authorize', '/wechat-callback?state=x&code=y'].map(
      (rest) =>
        ['GET /interaction/:uid', `/interaction/${uid}${rest}`, 'page'] as [string, string, Expectation],
    ),
  ),
  ['POST /interaction/:uid/abort', '/interaction/%00/abort', 'page'],
  ['POST /interaction/:uid/consent', '/interaction/%E4%B8/consent', 'page'],
  ...[
    '..%2f..%2fetc',
    '..%2F..%2Fetc%2Fpasswd',
    '..',
    '%2e%2e',
    '%00',
    '%E4%B8',
    '%zz',
    '%ED%A0%80',
    `x${'a'.repeat(8_000)}`,
    '00000000-0000-0000-0000-000000000000%00',
  ].map((id) => ['GET /avatars/:accountId', `/avatars/${id}`, 'any'] as [string, string, Expectation]),
  ...['%00', '%E4%B8', '%zz', '..%2fdelete'].map(
    (purpose) =>
      ['GET /account/login-again/:purpose', `/account/login-again/${purpose}`, 'page'] as [
        string,
        string,
        Expectation,
      ],
  ),
  ...['%00', '%E4%B8', '%zz', `x${'a'.repeat(8_000)}`].map(
    (uid) => ['GET /auth/:uid', `/auth/${uid}`, 'page'] as [string, string, Expectation],
  ),
  ...['%00', '%E4%B8', '%zz', '..%2f..%2fetc%2fpasswd'].map(
    (token) =>
      ['GET /MP_verify_:token.txt', `/MP_verify_${token}.txt`, 'any'] as [string, string, Expectation],
  ),
  ['GET /assets/:file', '/assets/..%2f..%2fpackage.json', 'any'],
  ['GET /assets/:file', '/assets/%2e%2e/%2e%2e/package.json', 'any'],
  ['GET an unknown path', '/%E4%B8', 'any'],
  ['GET an unknown path', '//evil.example/x', 'any'],
  ['GET an absolute-form target', 'http://evil.example/account', 'page'],
  ['GET the asterisk-form target', '*', 'any'],
];

const PATH_ROWS: Row[] = PATHS.map(([route, target, expectation]) => ({
  route,
  variant: target.length > 80 ? `${target.slice(0, 40)}... (${target.length} characters)` : target,
  expect: expectation,
  request: (f: Fixture): RawRequest => {
    const method = route.split(' ')[0] as string;
    const headers = asPerson(f.session);
    return method === 'POST' ? post(target, 'reason=x', headers) : get(target, headers);
  },
}));

// --- Cookies --------------------------------------------------------------------------------------

const COOKIES: Array<[variant: string, cookie: string]> = [
  ['_session of 4 kB junk', `_session=${'j'.repeat(4_096)}`],
  ['_session with a garbage signature', '_session=x; _session.sig=garbage'],
  ['_session.sig without its cookie', '_session.sig=abc'],
  ['_session of %E4%B8, signature %zz', '_session=%E4%B8; _session.sig=%zz'],
  ['_interaction of NUL, raw bytes signature', '_interaction=%00; _interaction.sig=\xff\xfe'],
  ['a forged account_login', 'account_login=%7B%22state%22%3A1; account_login.sig=forged'],
  ['a forged demo_rp', 'demo_rp=%7B; demo_rp.sig=forged'],
  ['an unterminated quote', '_session="unterminated'],
  ['empty names and values', '=;;=; ;=x'],
  ['a 4 kB name', `${'n'.repeat(4_000)}=v`],
  ['raw UTF-8 and non-UTF-8 bytes', '_session=\xe4\xb8\xad\xff; x=\xc3'],
  ['300 cookies', Array.from({ length: 300 }, (_, i) => `c${i}=v`).join('; ')],
];

const COOKIE_ROUTES: Array<[route: string, request: (cookie: string) => RawRequest]> = [
  ['GET /account', (c) => get('/account', asPerson(c))],
  ['GET /account/callback', (c) => get('/account/callback?state=x&code=y', asPerson(c))],
  ['GET /account/delete', (c) => get('/account/delete', asPerson(c))],
  ['GET /demo/callback', (c) => get('/demo/callback?state=x&code=y', asPerson(c))],
  ['GET /interaction/:uid', (c) => get(`/interaction/${UNKNOWN_UID}`, asPerson(c))],
  ['GET /auth', (c) => get(`/auth?${new URLSearchParams(AUTHORIZATION)}`, asPerson(c))],
  ['GET /auth/:uid', (c) => get(`/auth/${UNKNOWN_UID}`, asPerson(c))],
  ['GET /session/end', (c) => get('/session/end', asPerson(c))],
  ['POST /session/end/confirm', (c) => post('/session/end/confirm', 'xsrf=x&logout=yes', asPerson(c))],
  ['POST /account/sign-out-everywhere', (c) => post('/account/sign-out-everywhere', 'csrf=x', asPerson(c))],
  ['POST /interaction/:uid/abort', (c) => post(`/interaction/${UNKNOWN_UID}/abort`, 'reason=x', asPerson(c))],
];

const COOKIE_ROWS: Row[] = COOKIE_ROUTES.flatMap(([route, request]) =>
  COOKIES.map(([variant, cookie]) => ({
    route,
    variant: `Cookie: ${variant}`,
    expect: 'page' as const,
    request: () => request(cookie),
  })),
);

// --- Authorization headers ------------------------------------------------------------------------

const base64 = (text: string) => Buffer.from(text, 'latin1').toString('base64');

const AUTHORIZATIONS: Array<[variant: string, header: string]> = [
  ['Bearer with nothing', 'Bearer'],
  ['Bearer and a space', 'Bearer '],
  ['Bearer of 10 kB', `Bearer ${TEN_KB}`],
  ['Bearer with raw non-ASCII bytes', 'Bearer \xe4\xb8\xad\xff'],
  ['two Bearer tokens', 'Bearer a, Bearer b'],
  ['Basic with nothing', 'Basic'],
  ['Basic of invalid base64', 'Basic !!!*'],
  ['Basic without a colon', `Basic ${base64('no-colon')}`],
  ['Basic of an empty id and secret', `Basic ${base64(':')}`],
  ['Basic with %E4%B8 in the id', `Basic ${base64('%E4%B8:x')}`],
  ['Basic with %zz in id and secret', `Basic ${base64('%zz:%zz')}`],
  ['Basic with a NUL id', `Basic ${base64('%00:x')}`],
  ['Basic with a raw NUL in the id', `Basic ${base64('\x00:\x00')}`],
  ['Basic with non-UTF-8 bytes', `Basic ${base64('\xff\xfe:\xc3')}`],
  // Larger headers are Node's to refuse (431): 16 KiB for them all.
  ['Basic of 12 kB', `Basic ${base64(`${'u'.repeat(4_500)}:${'p'.repeat(4_500)}`)}`],
  ['Basic with raw non-ASCII bytes', 'Basic \xe4\xb8\xad'],
  ['an unknown scheme', 'DPoP x'],
];

const AUTHORIZATION_ROUTES: Array<[route: string, request: (authorization: string) => RawRequest]> = [
  ['GET /me', (a) => get('/me', [...asClient(), ['authorization', a]])],
  ['POST /me', (a) => post('/me', '', [...asClient(), ['authorization', a]])],
  [
    'POST /token',
    (a) => post('/token', 'grant_type=refresh_token&refresh_token=x', [...asClient(), ['authorization', a]]),
  ],
  [
    'POST /token/introspection',
    (a) => post('/token/introspection', 'token=x', [...asClient(), ['authorization', a]]),
  ],
  [
    'POST /token/revocation',
    (a) => post('/token/revocation', 'token=x', [...asClient(), ['authorization', a]]),
  ],
  [
    'POST /request',
    (a) =>
      post('/request', `response_type=code&scope=openid&redirect_uri=${REDIRECT_URI}`, [
        ...asClient(),
        ['authorization', a],
      ]),
  ],
  ...['decrypt', 'check-session'].map(
    (name) =>
      [
        `POST /mini-program/${name}`,
        (a: string) =>
          post(
            `/mini-program/${name}`,
            '{"code":"x"}',
            [...asClient(), ['authorization', a]],
            'application/json',
          ),
      ] as [string, (authorization: string) => RawRequest],
  ),
];

const AUTHORIZATION_ROWS: Row[] = AUTHORIZATION_ROUTES.flatMap(([route, request]) =>
  AUTHORIZATIONS.map(([variant, header]) => ({
    route,
    variant: `Authorization: ${variant}`,
    expect: 'oauth' as const,
    request: () => request(header),
  })),
);

// --- Host header ----------------------------------------------------------------------------------

const HOSTS: Array<[variant: string, host: string | null]> = [
  ['none', null],
  ['empty', ''],
  ['with a space', 'a b'],
  ['another host', 'evil.example'],
  ['an unclosed IPv6 bracket', '[::1'],
  ['a port out of range', 'localhost:99999'],
  ['two ports', '127.0.0.1:1:2'],
  ['raw non-ASCII bytes', '\xe4\xb8\xad.example'],
  ['a percent-encoded NUL', '%00'],
  ['4 kB', 'h'.repeat(4_000)],
];

const HOST_ROUTES: Array<[route: string, expect: Expectation, request: (f: Fixture) => RawRequest]> = [
  ['GET /.well-known/openid-configuration', 'any', () => get('/.well-known/openid-configuration')],
  ['GET /jwks', 'any', () => get('/jwks')],
  ['GET /auth', 'page', () => get(`/auth?${new URLSearchParams(AUTHORIZATION)}`, asPerson())],
  ['GET /account', 'page', (f) => get('/account', asPerson(f.session))],
  ['GET /account/login', 'page', () => get('/account/login', asPerson())],
  ['GET /demo', 'page', () => get('/demo', asPerson())],
  ['GET /session/end', 'page', (f) => get('/session/end', asPerson(f.session))],
  ['POST /token', 'oauth', () => post('/token', 'grant_type=refresh_token&refresh_token=x', asClient(BASIC))],
  ['GET /healthz', 'any', () => get('/healthz')],
];

const HOST_ROWS: Row[] = HOST_ROUTES.flatMap(([route, expectation, request]) =>
  HOSTS.map(([variant, host]) => ({
    route,
    variant: `Host: ${variant}`,
    // Without Host, Node refuses an HTTP/1.1 request itself (400, no body) before the application.
    expect: host === null ? 'any' : expectation,
    request: (f: Fixture) => ({ ...request(f), host }),
  })),
);

/** Each row as a test.each case named by its route and variant in full (`$route` is cut at 40 characters). */
const named = (rows: Row[]) => rows.map((row): [string, Row] => [`${row.route}, ${row.variant}`, row]);

// --- Checking an answer ---------------------------------------------------------------------------

/** A stack trace's frame, or a path into the source or its dependencies. */
const LEAKS = [/\n\s+at \S/, /\bat \S+ \(\S+:\d+:\d+\)/, /node_modules/, /\.(ts|js):\d+:\d+/];

/** pino's error and fatal levels. */
const ERROR_LEVEL = /"level":(50|60)\b/;

async function check(f: Fixture, row: Row): Promise<void> {
  const request = await row.request(f);
  const logged = f.bridge.logs.length;
  const answer = await rawRequest(f.bridge.instanceUrl, request);
  const errors = f.bridge.logs.slice(logged).filter((line) => ERROR_LEVEL.test(line));
  const seen = `${answer.status} ${answer.headers['content-type']?.[0] ?? '(no type)'} ${answer.body.slice(0, 300)}`;

  expect(answer.status, `a server error: ${seen}`).toBeLessThan(500);
  expect(errors, 'error-level log lines').toEqual([]);
  for (const leak of LEAKS) expect(answer.body, 'a stack trace or source path').not.toMatch(leak);
  expect(answer.body.includes(PACKAGE_ROOT), 'the source directory').toBe(false);
  const secrets = f.secrets.filter((secret) => answer.body.includes(secret));
  expect(secrets.length, 'a secret in the answer').toBe(0);

  switch (row.expect) {
    case 'page':
      return expectPage(answer, seen);
    case 'oauth':
      return expectOAuthError(answer, seen);
    case '405':
      expect(answer.status, seen).toBe(405);
      expect(answer.headers.allow?.[0], `Allow: ${seen}`).toMatch(/^[A-Z, ]+$/);
      expect(answer.headers.allow?.[0]?.split(', '), 'Allow names the refused method').not.toContain(
        request.method,
      );
      // Every method the route takes, POST where the posted-requests shim takes it for the engine.
      expect(answer.headers.allow?.[0]?.split(', '), 'Allow names what the route takes').toEqual(
        expect.arrayContaining([...(row.allows ?? [])]),
      );
      return;
    case '404':
      expect(answer.status, seen).toBe(404);
      return;
    case 'any':
      return;
  }
}

/**
 * A person's page, unless a redirect: HTML with a title (ours also declare their language;
 * oidc-provider's self-submitting form, at a logout with no session left, does not).
 */
function expectPage(answer: RawAnswer, seen: string): void {
  if (answer.status >= 300 && answer.status < 400) {
    expect(answer.headers.location?.[0], `a redirect without Location: ${seen}`).toBeTruthy();
    return;
  }
  expect(answer.headers['content-type']?.[0], `not a page: ${seen}`).toMatch(/^text\/html/);
  expect(answer.body, `a page without a title: ${seen}`).toMatch(/<title>[^<]+<\/title>/);
}

/** A client endpoint's refusal: an OAuth error JSON. */
function expectOAuthError(answer: RawAnswer, seen: string): void {
  if (answer.status < 400) return;
  expect(answer.headers['content-type']?.[0], `not JSON: ${seen}`).toMatch(/^application\/json/);
  const body = JSON.parse(answer.body) as { error?: unknown };
  expect(typeof body.error, `no OAuth error: ${seen}`).toBe('string');
}

// --- The stack ------------------------------------------------------------------------------------

const cookieHeader = (browser: TestBrowser) =>
  browser
    .cookies()
    .map(({ name, value }) => `${name}=${value}`)
    .join('; ');

async function prepare(storage: StorageSetup, configure: (config: Config) => Config): Promise<Fixture> {
  const bridge = await startBridge({
    storage,
    demo: true,
    apps: [WEBSITE_APP, MINI_PROGRAM_APP],
    configure: (config) =>
      configure({
        ...config,
        clients: [...config.clients, MINI_PROGRAM_CLIENT],
        wechat: { ...config.wechat, mpVerifyTokens: ['abc123'] },
      }),
  });
  try {
    const rp = await relyingParty(bridge);
    const person: SandboxUser = await createSandboxUser(bridge, 'Malformed Input');
    const browser = new TestBrowser();
    const { tokens } = await loginAs(rp, person, {
      browser,
      scope: 'openid profile offline_access',
      prompt: 'consent',
    });
    const account = await browser.request(`${bridge.url}/account`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(account.body)?.[1];
    if (!csrf) throw new Error(`no form token on the account page (${account.status})`);
    const miniProgram = await miniProgramClient(bridge);
    const miniProgramToken = (await exchangeJsCode(miniProgram, await wxLogin(bridge, person))).access_token;

    const freshLogin = async (): Promise<Login> => {
      const login = await startLogin(rp);
      const state = login.qrUrl.searchParams.get('state');
      if (!state) throw new Error('no WeChat state on the login page');
      return { uid: interactionUid(login), state, cookie: cookieHeader(login.browser) };
    };
    /** A login started at `path` (it redirects to /auth with the state it keeps in its cookie). */
    const loginAt = async (path: string) => {
      const starter = new TestBrowser();
      const redirect = await starter.request(`${bridge.url}${path}`);
      const state = redirect.location ? new URL(redirect.location).searchParams.get('state') : null;
      if (!state)
        throw new Error(`${path} did not redirect to the authorization endpoint (${redirect.status})`);
      return { state, cookie: cookieHeader(starter) };
    };

    const { dataDir } = bridge.config;
    const cookieKeys = JSON.parse(await readFile(join(dataDir, 'cookie-keys.json'), 'utf8')) as string[];
    const jwks = JSON.parse(await readFile(join(dataDir, 'jwks.json'), 'utf8')) as {
      keys: Array<Record<string, unknown>>;
    };
    const privateParts = jwks.keys.flatMap((key) =>
      ['d', 'p', 'q', 'dp', 'dq', 'qi'].flatMap((member) =>
        typeof key[member] === 'string' ? [key[member] as string] : [],
      ),
    );
    return {
      bridge,
      session: cookieHeader(browser),
      csrf,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token as string,
      miniProgramToken,
      interaction: await freshLogin(),
      freshLogin,
      accountLogin: () => loginAt('/account/login'),
      demoLogin: () => loginAt('/demo/login'),
      secrets: [
        RP.client_secret,
        WEBSITE_APP.secret,
        MINI_PROGRAM_APP.secret,
        ...cookieKeys,
        ...privateParts,
      ],
    };
  } catch (error) {
    await bridge.close();
    throw error;
  }
}

const servicesUp = await storageAvailable('postgres+redis');

/**
 * Embedded; PostgreSQL and Redis; and PostgreSQL alone, where oidc-provider's artifacts and the
 * key-value entries are rows too (text columns, which refuse NUL).
 */
const SETUPS: Array<{ name: string; storage: StorageSetup; configure: (config: Config) => Config }> = [
  { name: 'embedded', storage: 'embedded', configure: (config) => config },
  { name: 'postgres+redis', storage: 'postgres+redis', configure: (config) => config },
  {
    name: 'postgres alone',
    storage: 'postgres+redis',
    configure: (config) => ({ ...config, storage: { ...config.storage, redisUrl: undefined } }),
  },
];

for (const setup of SETUPS) {
  describe.skipIf(setup.storage !== 'embedded' && !servicesUp)(`malformed input (${setup.name})`, () => {
    const f = {} as Fixture;

    beforeAll(async () => {
      Object.assign(f, await prepare(setup.storage, setup.configure));
    });
    afterAll(async () => {
      await f.bridge?.close();
    });

    test.each(named(QUERY_ROWS))('query: %s', (_, row) => check(f, row));
    test.each(named(FORM_ROWS))('form: %s', (_, row) => check(f, row));
    test.each(named(CONTENT_ROWS))('content type: %s', (_, row) => check(f, row));
    test.each(named(JSON_ROWS))('JSON: %s', (_, row) => check(f, row));
    test.each(named(METHOD_ROWS))('method: %s', (_, row) => check(f, row));
    test.each(named(PATH_ROWS))('path: %s', (_, row) => check(f, row));
    test.each(named(COOKIE_ROWS))('cookie: %s', (_, row) => check(f, row));
    test.each(named(AUTHORIZATION_ROWS))('authorization: %s', (_, row) => check(f, row));
    test.each(named(HOST_ROWS))('host: %s', (_, row) => check(f, row));

    test('nothing was lost: the session, the account page, the tokens and the mini program still work', async () => {
      const page = await rawRequest(f.bridge.instanceUrl, get('/account', asPerson(f.session)));
      expect(page.status).toBe(200);
      expect(page.body).toContain('Malformed Input');
      const rp = await relyingParty(f.bridge);
      const refreshed = await oidc.refreshTokenGrant(rp, f.refreshToken);
      expect(refreshed.access_token).toBeTruthy();
      const checked = await callMiniProgram(f.bridge, 'check-session', f.miniProgramToken);
      expect(checked.status).toBe(200);
    });
  });
}
