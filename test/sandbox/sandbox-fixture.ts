import { createSandbox } from '../../src/sandbox/create-sandbox.ts';
import type { SandboxState } from '../../src/sandbox/state.ts';
import type { SandboxApp, SandboxOptions } from '../../src/sandbox/types.ts';

export const WEBSITE: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60001',
  secret: 'website-secret-0001',
  kind: 'website',
  name: '测试网站',
};
export const OTHER_WEBSITE: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60002',
  secret: 'website-secret-0002',
  kind: 'website',
};
export const UNBOUND: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60003',
  secret: 'website-secret-0003',
  kind: 'website',
  boundToOpenPlatform: false,
};
export const RESTRICTED: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60004',
  secret: 'website-secret-0004',
  kind: 'website',
  callbackDomains: ['rp.example.test', 'localhost:3000'],
};
export const OFFICIAL_ACCOUNT: SandboxApp = {
  appid: 'wxa1b2c3d4e5f60005',
  secret: 'oa-secret-0005',
  kind: 'official_account',
};
export const ALL_APPS = [WEBSITE, OTHER_WEBSITE, UNBOUND, RESTRICTED, OFFICIAL_ACCOUNT];

export const REDIRECT_URI = 'https://rp.example.test/wechat/callback';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON (whatever the Content-Type, as clients must); undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
  location: string | null;
}

export interface TestSandbox {
  url: string;
  state: SandboxState;
  /** Moves the injected clock forward. */
  advance(ms: number): void;
  get(path: string, query?: Record<string, string>): Promise<Answer>;
  postForm(path: string, form: Record<string, string>): Promise<Answer>;
  send(method: string, path: string, body?: unknown): Promise<Answer>;
  close(): Promise<void>;
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return {
    status: response.status,
    headers: response.headers,
    text,
    json,
    location: response.headers.get('location'),
  };
}

/** A sandbox on a free port with an injected clock; every request is real HTTP and never follows redirects. */
export async function startTestSandbox(options: Partial<SandboxOptions> = {}): Promise<TestSandbox> {
  let now = Date.UTC(2025, 0, 15, 8, 0, 0);
  const sandbox = createSandbox({ apps: ALL_APPS, seed: 'test-seed', now: () => now, ...options });
  const listening = await sandbox.listen(0);
  const url = listening.url;
  return {
    url,
    state: sandbox.state,
    advance: (ms) => {
      now += ms;
    },
    get: async (path, query) => {
      const target = new URL(path, url);
      for (const [name, value] of Object.entries(query ?? {})) target.searchParams.set(name, value);
      return answer(await fetch(target, { redirect: 'manual' }));
    },
    postForm: async (path, form) =>
      answer(
        await fetch(new URL(path, url), {
          method: 'POST',
          body: new URLSearchParams(form),
          redirect: 'manual',
        }),
      ),
    send: async (method, path, body) =>
      answer(
        await fetch(new URL(path, url), {
          method,
          redirect: 'manual',
          ...(body === undefined
            ? {}
            : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        }),
      ),
    close: () => listening.close(),
  };
}

export function firstUser(sandbox: TestSandbox) {
  return sandbox.state.listUsers()[0]!;
}

/** A code as the QR page's "allow" gives it, without the browser. */
export function codeFor(
  sandbox: TestSandbox,
  app: SandboxApp,
  userId = firstUser(sandbox).id,
  scope?: string,
) {
  return sandbox.state.issueCode({ appid: app.appid, userId, ...(scope ? { scope } : {}) });
}

export function exchange(sandbox: TestSandbox, app: SandboxApp, code: string) {
  return sandbox.get('/sns/oauth2/access_token', {
    appid: app.appid,
    secret: app.secret,
    code,
    grant_type: 'authorization_code',
  });
}

/** Exchanges a fresh code: the token answer's JSON. */
export async function tokensFor(sandbox: TestSandbox, app: SandboxApp, userId?: string, scope?: string) {
  const answer = await exchange(sandbox, app, codeFor(sandbox, app, userId, scope));
  if (!answer.json?.access_token) throw new Error(`no token: ${answer.text}`);
  return answer.json as { access_token: string; refresh_token: string; openid: string; scope: string };
}

export const RID = /, rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$/;
