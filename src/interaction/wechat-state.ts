import { randomBytes } from 'node:crypto';
import type { KeyValueStore } from '../storage/ports.ts';
import type { OfficialAccountScope, WeChatAppKind } from '../upstream/wechat/types.ts';

/** What a WeChat `state` stands for: which interaction started which login kind with which app. */
export interface WeChatFlow {
  uid: string;
  kind: WeChatAppKind;
  appid: string;
  /** Official Account trips: the scope asked for, which decides what the callback may read. */
  scope?: OfficialAccountScope;
}

const key = (state: string) => `wechat-state:${state}`;
const usedKey = (state: string) => `wechat-state-used:${state}`;
const STATE_FORMAT = /^[\w-]{16,128}$/;

/**
 * A fresh `state` for one trip to WeChat: random, bound to the interaction, shared by all
 * instances through the store, and living no longer than the interaction itself.
 */
export async function issueState(kv: KeyValueStore, flow: WeChatFlow, ttlSeconds: number): Promise<string> {
  const state = randomBytes(24).toString('base64url');
  await kv.put(key(state), flow, Math.max(1, ttlSeconds));
  return state;
}

/**
 * Reads the state without using it up. WeChat may deliver one callback twice: both deliveries must
 * find the flow, and `markStateUsed` (with the per-code claim) makes sure only one is acted on.
 */
export async function peekState(kv: KeyValueStore, state: string): Promise<WeChatFlow | undefined> {
  if (!STATE_FORMAT.test(state)) return undefined;
  return kv.get<WeChatFlow>(key(state));
}

/**
 * Records that a code was accepted for this state: true the first time only, on every instance.
 * One trip to WeChat yields one code, so a second code for the same state is a replay or a forgery.
 */
export async function markStateUsed(kv: KeyValueStore, state: string, ttlSeconds: number): Promise<boolean> {
  return kv.putIfAbsent(usedKey(state), true, Math.max(1, ttlSeconds));
}

/** Takes the state once: a second callback with the same state (a replay) finds nothing. */
export async function takeState(kv: KeyValueStore, state: string): Promise<WeChatFlow | undefined> {
  if (!STATE_FORMAT.test(state)) return undefined;
  return kv.take<WeChatFlow>(key(state));
}
