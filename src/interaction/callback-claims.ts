import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { KeyValueStore } from '../storage/ports.ts';
import type { Failure } from './failure.ts';

/**
 * WeChat often delivers one callback twice with the same code (wechat-api.md §3: the second from
 * WeChat's servers, without the person's cookies; exchanging the code again fails with 40163). The
 * first delivery claims the (appid, code) in the store shared by every instance and records where it
 * sent the browser; a later delivery of the same code never exchanges it again: it waits for that
 * outcome and repeats it, or (without the person's cookies) answers a neutral page.
 */

/** Where a callback sent the browser: on to the authorization endpoint or WeChat, or a failure page. */
export type CallbackOutcome =
  | { kind: 'redirect'; location: string }
  | { kind: 'failure'; failure: Failure; status: number };

export interface CodeClaim {
  /** The interaction the first delivery belonged to. */
  uid: string;
  /** Absent while the first delivery is still at work. */
  outcome?: CallbackOutcome;
}

const POLL_INTERVAL_MS = 50;

/**
 * Names a code of an app without holding it: the code is a credential until it expires, so the
 * store keeps a digest, never the code itself.
 */
export const codeDigest = (appid: string, code: string): string =>
  createHash('sha256').update(`${appid}\n${code}`).digest('base64url');

const key = (appid: string, code: string) => `wechat-code:${codeDigest(appid, code)}`;

/** True for the first delivery of this code, on any instance. */
export async function claimCode(
  kv: KeyValueStore,
  appid: string,
  code: string,
  uid: string,
  ttlSeconds: number,
): Promise<boolean> {
  const claim: CodeClaim = { uid };
  return kv.putIfAbsent(key(appid, code), claim, Math.max(1, ttlSeconds));
}

export async function recordOutcome(
  kv: KeyValueStore,
  appid: string,
  code: string,
  claim: Required<CodeClaim>,
  ttlSeconds: number,
): Promise<void> {
  await kv.put(key(appid, code), claim, Math.max(1, ttlSeconds));
}

/**
 * When the first delivery died after claiming the code (its instance was killed, or a store failed
 * mid-request), the claim never settles. A later delivery for the same interaction may take the
 * claim over, once across all instances: true for the one that does.
 */
export async function takeOverClaim(
  kv: KeyValueStore,
  appid: string,
  code: string,
  uid: string,
  ttlSeconds: number,
): Promise<boolean> {
  return kv.putIfAbsent(`${key(appid, code)}:takeover`, uid, Math.max(1, ttlSeconds));
}

export function findClaim(kv: KeyValueStore, appid: string, code: string): Promise<CodeClaim | undefined> {
  return kv.get<CodeClaim>(key(appid, code));
}

/**
 * Polls the store until `probe` finds something or `timeoutMs` passes. The first delivery may run on
 * another instance, so there is nothing in-process to wait on.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined || Date.now() >= deadline) return found;
    await delay(POLL_INTERVAL_MS);
  }
}
