import { randomBytes } from 'node:crypto';
import type { KeyValueStore } from '../storage/ports.ts';
import type { WeChatAppKind } from '../upstream/wechat/types.ts';

/** What a WeChat `state` stands for: which interaction started which login kind with which app. */
export interface WeChatFlow {
  uid: string;
  kind: WeChatAppKind;
  appid: string;
}

const key = (state: string) => `wechat-state:${state}`;

/**
 * A fresh `state` for one trip to WeChat: random, bound to the interaction, shared by all
 * instances through the store, and living no longer than the interaction itself.
 */
export async function issueState(kv: KeyValueStore, flow: WeChatFlow, ttlSeconds: number): Promise<string> {
  const state = randomBytes(24).toString('base64url');
  await kv.put(key(state), flow, Math.max(1, ttlSeconds));
  return state;
}

/** Takes the state once: a second callback with the same state (a replay) finds nothing. */
export async function takeState(kv: KeyValueStore, state: string): Promise<WeChatFlow | undefined> {
  if (!/^[\w-]{16,128}$/.test(state)) return undefined;
  return kv.take<WeChatFlow>(key(state));
}
