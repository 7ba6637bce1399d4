import type { Server } from 'node:http';
import type Koa from 'koa';
import type { SandboxState } from './state.ts';

export type SandboxAppKind = 'website' | 'official_account' | 'mini_program';

/** One emulated WeChat app. The secret is the sandbox's own fake AppSecret. */
export interface SandboxApp {
  appid: string;
  secret: string;
  kind: SandboxAppKind;
  name?: string;
  /** Default true: the app is bound to an Open Platform account, so unionid is returned. */
  boundToOpenPlatform?: boolean;
  /** When set, a redirect_uri's host[:port] must equal one of these (case-insensitive). */
  callbackDomains?: string[];
}

export type SandboxContentType = 'text/plain' | 'application/json';
export type SandboxDenyMode = 'redirect_without_code' | 'no_redirect';

export interface SandboxOptions {
  apps: SandboxApp[];
  /** Content-Type of API answers; default text/plain, as WeChat often serves, to catch strict clients. */
  contentType?: SandboxContentType;
  /** What "decline" does (sources disagree, §2): redirect with only `state`, or stay on a page. */
  denyMode?: SandboxDenyMode;
  /** Milliseconds clock; inject one in tests to expire codes and tokens without waiting. */
  now?: () => number;
  /** Makes user ids, unionids and openids stable across restarts; random when absent. */
  seed?: string;
  /**
   * Whether the people created at run time (after the seeded three) get the same ids again, in
   * the order of creation, after a restart with the same seed (default true). The built-in
   * sandbox says false: the accounts it logged in outlive it in the data directory while its
   * people do not, and a person created after a restart must not log in as someone created
   * before it.
   */
  stableCreations?: boolean;
  /**
   * Deliver every callback with a code twice (§3): the browser's redirect, and a copy the sandbox
   * requests itself without cookies, as WeChat's servers do. Default false; switchable at run time.
   */
  deliverTwice?: boolean;
}

export interface ListeningSandbox {
  /** e.g. http://127.0.0.1:43123 (no trailing slash). */
  url: string;
  server: Server;
  close(): Promise<void>;
}

export interface Sandbox {
  app: Koa;
  state: SandboxState;
  /** Listens on port (default 0: any free port) and host (default 127.0.0.1). */
  listen(port?: number, host?: string): Promise<ListeningSandbox>;
}
