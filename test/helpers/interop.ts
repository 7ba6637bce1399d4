import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientConfig } from '../../src/config/types.ts';
import type { Bridge } from './bridge.ts';
import { type Hop, TestBrowser } from './browser.ts';
import {
  callbackFromWeChat,
  continueToRp,
  loginStarted,
  type SandboxUser,
  type StartedLogin,
} from './flow.ts';

/**
 * Interoperability tests: relying parties written in other languages, installed from Debian's
 * packages (never imitations), started by the tests as child processes on free loopback ports.
 */

/** Debian's Apache and the module; Debian's own Python (the one its python3-* packages serve). */
export const APACHE2 = process.env.APACHE2_PATH ?? '/usr/sbin/apache2';
export const APACHE_MODULES = process.env.APACHE_MODULES_DIR ?? '/usr/lib/apache2/modules';
export const DEBIAN_PYTHON = process.env.DEBIAN_PYTHON ?? '/usr/bin/python3';

/**
 * Whether a relying party's packages are installed. Missing outside CI: false, with a message saying
 * what is skipped and what to install. Missing with env CI set: throws, so CI never passes by skipping.
 */
export function interopAvailable(what: string, installed: boolean, packages: string): boolean {
  if (installed) return true;
  const hint = `${what} is not installed (apt-get install ${packages})`;
  if (process.env.CI) throw new Error(`${hint}; CI is set, so the interop tests fail instead of skipping`);
  console.warn(`${hint}: skipping its interop tests`);
  return false;
}

export function apacheInstalled(): boolean {
  return existsSync(APACHE2) && existsSync(join(APACHE_MODULES, 'mod_auth_openidc.so'));
}

export function authlibInstalled(): boolean {
  if (!existsSync(DEBIAN_PYTHON)) return false;
  const probe = spawnSync(DEBIAN_PYTHON, ['-I', '-c', 'import authlib, requests'], { stdio: 'ignore' });
  return probe.status === 0;
}

/** A random secret for one run (client secrets, passphrases); never logged. */
export function randomSecret(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * A port free on 127.0.0.1 right now, for a server that must be named before it starts. Chosen at
 * random below the kernel's ephemeral range: a port from listen(0) could meanwhile become the source
 * port of any outgoing connection (or another listen(0)), and the server would then fail to bind it.
 */
export async function freePort(): Promise<number> {
  const ephemeralLow = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
    .then((text) => Number.parseInt(text.trim().split(/\s+/)[0] ?? '', 10))
    .catch(() => Number.NaN);
  const high = Number.isFinite(ephemeralLow) && ephemeralLow > 12_000 ? ephemeralLow : 32_768;
  const low = high - 10_000;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found in ${low}-${high - 1}`);
}

function bindable(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A temporary directory, removed by `remove()` (also when the test failed). */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Makes a directory readable to a server that drops root (Apache's www-data). */
export async function openToOthers(path: string): Promise<void> {
  await chmod(path, 0o755);
}

/** The confidential client an interop relying party is registered as (client_secret_basic). */
export function interopClient(p: {
  client_id: string;
  client_name: string;
  client_secret: string;
  redirect_uri: string;
  post_logout_redirect_uri?: string;
}): ClientConfig & { client_secret: string } {
  return {
    client_id: p.client_id,
    client_name: p.client_name,
    client_secret: p.client_secret,
    redirect_uris: [p.redirect_uri],
    ...(p.post_logout_redirect_uri ? { post_logout_redirect_uris: [p.post_logout_redirect_uri] } : {}),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

/** Replaces every secret given, and any authorization code in a URL, in text shown on failure. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret) out = out.split(secret).join('[redacted]');
  return out.replace(
    /\b(code|access_token|id_token|id_token_hint|refresh_token)=[^&\s"']+/g,
    '$1=[redacted]',
  );
}

/** A child process of a test: its output kept (bounded) for failure messages, stopped by pid. */
export class TestProcess {
  readonly #child: ChildProcess;
  readonly #name: string;
  readonly #secrets: readonly string[];
  #output = '';
  readonly exited: Promise<number | null>;
  readonly #onExit = () => this.#child.kill('SIGKILL');

  constructor(
    name: string,
    command: string,
    args: string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string; secrets?: readonly string[] } = {},
  ) {
    this.#name = name;
    this.#secrets = options.secrets ?? [];
    this.#child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-20_000);
    };
    this.#child.stdout?.on('data', keep);
    this.#child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        process.off('exit', this.#onExit);
        resolve(code ?? (signal ? -1 : null));
      });
      this.#child.once('error', (error) => {
        this.#output += `\n${error.message}`;
        process.off('exit', this.#onExit);
        resolve(-1);
      });
    });
    // Should the test runner exit without the afterAll, the child goes with it.
    process.once('exit', this.#onExit);
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Whether the process printed `text` (in its last 20 kB of output). */
  printed(text: string): boolean {
    return this.#output.includes(text);
  }

  /** What the process printed (its last 20 kB), with the secrets it knows redacted. */
  output(): string {
    return redact(this.#output, this.#secrets);
  }

  /**
   * Waits until the process says it is ready (`ready`, e.g. it printed that it listens, or wrote its
   * pid file once its sockets were bound) and `port` accepts connections; fails at once, with the
   * output, if the process ends. A connection alone proves nothing: another program may hold the port.
   */
  async waitUntilListening(port: number, ready: () => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running)
        throw new Error(`${this.#name} exited before listening on ${port}:\n${this.output()}`);
      if (ready() && (await connects(port)) && this.running) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${this.#name} did not listen on ${port} within ${timeoutMs} ms:\n${this.output()}`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1');
  });
}

/** A person's browser as relying parties see it: every request a top-level navigation. */
export function navigatingBrowser(): TestBrowser {
  return new TestBrowser({ navigation: true });
}

/**
 * A person opens the relying party's `startUrl` and is sent to the bridge's login page (through
 * whatever redirects the relying party makes): the login as the flow helpers know it.
 */
export async function startLoginAtRp(startUrl: string, browser = navigatingBrowser()): Promise<StartedLogin> {
  // The relying party checks state, nonce and PKCE itself: nothing for the test to check here.
  return loginStarted(browser, { expectedState: '' }, await browser.follow(startUrl));
}

/**
 * The person scans and allows as `user` on the sandbox's QR page, consents on the bridge, and the
 * browser follows on to the relying party's `redirectUri` and wherever the relying party sends it
 * from there. Returns the last page (no redirect).
 */
export async function finishLoginAtRp(
  login: StartedLogin,
  user: SandboxUser,
  redirectUri: string,
): Promise<{ callback: URL; page: Hop }> {
  const wechatCallback = await callbackFromWeChat(login, { user, allow: true });
  const hop = await login.browser.request(wechatCallback.href);
  const callback = await continueToRp(login, hop, redirectUri);
  const page = await login.browser.follow(callback.href);
  return { callback, page };
}

/** The logout confirmation of the bridge (oidc-provider's form and its xsrf token), confirmed. */
export async function confirmLogout(bridge: Bridge, browser: TestBrowser, logoutPage: Hop): Promise<Hop> {
  const xsrf = logoutPage.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
  if (!logoutPage.body.includes('id="logout-yes"') || !xsrf)
    throw new Error(`not the logout page: ${logoutPage.url} (status ${logoutPage.status})`);
  return browser.request(`${bridge.url}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
}
