import * as oidc from 'openid-client';
import { type Bridge, MINI_PROGRAM_APP, MINI_PROGRAM_CLIENT } from './bridge.ts';
import type { SandboxUser } from './flow.ts';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JS_CODE = 'urn:wechat:params:oauth:token-type:js_code';

/** The mini program's side of the sandbox: the control API a developer's test would use. */
async function sandboxPost<T>(bridge: Bridge, path: string, body: Record<string, unknown>): Promise<T> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/mini-program/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`sandbox ${path} failed: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

/** wx.login() in the sandbox for this person; `rotate` replaces the session key as another device would. */
export async function wxLogin(
  bridge: Bridge,
  user: SandboxUser,
  options: { appid?: string; rotate?: boolean } = {},
): Promise<string> {
  const { code } = await sandboxPost<{ code: string }>(bridge, 'login', {
    appid: options.appid ?? MINI_PROGRAM_APP.appid,
    user: user.id,
    ...(options.rotate ? { rotate: true } : {}),
  });
  return code;
}

export interface EncryptedUserData {
  encryptedData: string;
  iv: string;
  rawData: string;
  signature: string;
}

/** wx.getUserInfo({ withCredentials: true }): encrypted with the person's current session key. */
export function wxUserData(
  bridge: Bridge,
  user: SandboxUser,
  options: { data?: Record<string, unknown>; watermark?: { appid?: string; timestamp?: number } } = {},
): Promise<EncryptedUserData> {
  return sandboxPost(bridge, 'user-data', { appid: MINI_PROGRAM_APP.appid, user: user.id, ...options });
}

/** The code of a getPhoneNumber button. */
export function wxPhoneCode(
  bridge: Bridge,
  user: SandboxUser,
  phone: { countryCode?: string; purePhoneNumber?: string } = {},
): Promise<{ code: string; countryCode: string; purePhoneNumber: string }> {
  return sandboxPost(bridge, 'phone-code', { appid: MINI_PROGRAM_APP.appid, user: user.id, ...phone });
}

/** openid-client as the mini program's public client (no secret), configured by discovery. */
export async function miniProgramClient(bridge: Bridge): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(bridge.url), MINI_PROGRAM_CLIENT.client_id, undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
}

/** The RFC 8693 exchange of a wx.login code, through openid-client's generic grant request. */
export function exchangeJsCode(
  client: oidc.Configuration,
  code: string,
  extra: Record<string, string> = {},
): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
  return oidc.genericGrantRequest(client, TOKEN_EXCHANGE, {
    subject_token: code,
    subject_token_type: JS_CODE,
    ...extra,
  });
}

export interface JsonAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
  text: string;
}

/** The token endpoint as wx.request would call it, as the mini program's client: the answer as it is. */
export async function tokenRequest(bridge: Bridge, params: Record<string, string>): Promise<JsonAnswer> {
  const response = await fetch(`${bridge.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: MINI_PROGRAM_CLIENT.client_id, ...params }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

/** A call to one of the bridge's mini-program endpoints, as wx.request would make it. */
export async function callMiniProgram(
  bridge: Bridge,
  path: 'decrypt' | 'phone-number' | 'check-session',
  accessToken: string | undefined,
  body?: unknown,
): Promise<JsonAnswer> {
  const response = await fetch(`${bridge.url}/mini-program/${path}`, {
    method: 'POST',
    headers: {
      ...(accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: text ? JSON.parse(text) : {} };
}
