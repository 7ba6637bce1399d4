import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { derivedKeyBytes, type Secret } from '../config/secret.ts';
import type { KeyValueStore } from '../storage/ports.ts';
import type { OfficialAccountScope } from '../upstream/wechat/types.ts';

/** The WeChat logins that go through a browser redirect (and so carry a `state`). */
export type RedirectLoginKind = 'website' | 'official_account';

/** What a WeChat `state` stands for: which interaction started which login kind with which app. */
export interface WeChatFlow {
  uid: string;
  kind: RedirectLoginKind;
  appid: string;
  /** Official Account trips: the scope asked for, which decides what the callback may read. */
  scope?: OfficialAccountScope;
  /**
   * A snsapi_userinfo trip from a page that was the client's consent page too (consent.ts,
   * consentOnAuthorizePage): signed into the state, so that the callback grants only what a page
   * said it would, whichever instance rendered it.
   */
  consentShown?: boolean;
}

/**
 * Issues and reads the `state` of a trip to WeChat. A state is signed, not stored: it carries the
 * login kind, scope and app, a random nonce, and a MAC over those and the interaction's uid, so it
 * is valid only on that interaction's callback. Showing a login page therefore writes nothing to the
 * shared store (reloads cannot fill it, and a login spends one Redis round trip less); every
 * instance reads a state with the keys they share. One use per state is still enforced in the store
 * (`markStateUsed`), and a state lives no longer than its interaction, which the callback needs.
 */
export interface StateSigner {
  issue(flow: WeChatFlow): string;
  /** The flow, when `state` was issued by this server for interaction `uid`; otherwise undefined. */
  read(state: string, uid: string): WeChatFlow | undefined;
}

// WeChat documents the state as "a-zA-Z0-9, at most 128 bytes" (wechat-api.md §3): every part is
// hexadecimal or an appid, and the whole stays under 128 characters.
// Layout: version, kind, scope (c: snsapi_userinfo from a page that was the consent page too),
// nonce (32 hex), MAC (32 hex), appid.
const VERSION = '1';
const STATE_FORMAT = /^1([wo])([nbuc])([0-9a-f]{32})([0-9a-f]{32})([A-Za-z0-9]{1,60})$/;
const KINDS: Record<string, RedirectLoginKind> = { w: 'website', o: 'official_account' };
const SCOPES: Record<string, OfficialAccountScope | undefined> = {
  n: undefined,
  b: 'snsapi_base',
  u: 'snsapi_userinfo',
  c: 'snsapi_userinfo',
};

function scopeLetter(flow: WeChatFlow): string {
  if (flow.scope === 'snsapi_base') return 'b';
  if (flow.scope === 'snsapi_userinfo') return flow.consentShown ? 'c' : 'u';
  return 'n';
}
const INFO = 'wechat-oidc-bridge wechat state v1';

/**
 * Keys derived (HKDF-SHA256) from the server's cookie keys, newest first: states are signed with
 * the newest and read with any, so a rotation does not break the logins in progress.
 */
export function createStateSigner(secrets: readonly Secret[]): StateSigner {
  if (secrets.length === 0) throw new Error('WeChat states need at least one key');
  // KeyObjects: on Node 24 an HMAC keyed by a Buffer costs about six times as much (cookie-signer.ts).
  const keys = secrets.map((secret) => createSecretKey(derivedKeyBytes(secret, INFO)));
  const mac = (key: KeyObject, uid: string, body: string) =>
    createHmac('sha256', key).update(`${uid}\n${body}`).digest().subarray(0, 16);

  return {
    issue(flow) {
      const kind = flow.kind === 'website' ? 'w' : 'o';
      const scope = scopeLetter(flow);
      const nonce = randomBytes(16).toString('hex');
      const tag = mac(keys[0] as KeyObject, flow.uid, `${kind}${scope}${nonce}${flow.appid}`).toString('hex');
      return `${VERSION}${kind}${scope}${nonce}${tag}${flow.appid}`;
    },

    read(state, uid) {
      const parts = STATE_FORMAT.exec(state);
      if (!parts) return undefined;
      const [, kind = '', scope = '', nonce = '', tag = '', appid = ''] = parts;
      const given = Buffer.from(tag, 'hex');
      const body = `${kind}${scope}${nonce}${appid}`;
      if (!keys.some((key) => timingSafeEqual(mac(key, uid, body), given))) return undefined;
      const flow: WeChatFlow = { uid, kind: KINDS[kind] as RedirectLoginKind, appid };
      const oaScope = SCOPES[scope];
      if (oaScope) flow.scope = oaScope;
      if (scope === 'c') flow.consentShown = true;
      return flow;
    },
  };
}

const usedKey = (state: string) => `wechat-state-used:${state}`;

/**
 * Records that this state was acted on, by the code named (codeDigest, callback-claims.ts) or, with
 * none, by the person's refusal: true the first time only, on every instance. One trip to WeChat
 * yields one code, so a second code for the same state is a replay or a forgery; the same code
 * again is WeChat or the browser delivering the callback twice (isStateUsedBy).
 */
export async function markStateUsed(
  kv: KeyValueStore,
  state: string,
  ttlSeconds: number,
  byCode?: string,
): Promise<boolean> {
  return kv.putIfAbsent(usedKey(state), byCode ?? true, Math.max(1, ttlSeconds));
}

/** Whether the state's mark names this code (markStateUsed). */
export async function isStateUsedBy(kv: KeyValueStore, state: string, byCode: string): Promise<boolean> {
  return (await kv.get(usedKey(state))) === byCode;
}

/**
 * Lets the state bring one more code: after a snapshot page's virtual account was refused, the
 * person taps 使用完整服务 and WeChat runs the same authorization again (wechat-api.md §3.1), whose
 * code comes back with the same state.
 */
export async function releaseState(kv: KeyValueStore, state: string): Promise<void> {
  await kv.delete(usedKey(state));
}
