import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/package-root.ts';
import { freePort } from '../helpers/interop.ts';
import { testDatabaseAdminUrl } from '../helpers/postgres.ts';
import { createTestRedis, testRedisUrl } from '../helpers/redis.ts';
import { startTcpRelay } from './tcp-relay.ts';

/**
 * The server's entry point as `npm start` runs it (src/main.ts, with config/default.yaml, from a
 * bare working directory): what it prints for a newcomer, and that both URLs answer. The browser
 * suites start the same setup in process; this one is the real process, signals and all.
 */
describe('the entry point with the default configuration', () => {
  let dir: string;
  let child: ChildProcessByStdio<null, Readable, Readable>;
  let written: Written;
  let port: number;
  let managementPort: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wob-entry-'));
    port = await freePort();
    do managementPort = await freePort();
    while (managementPort === port);
    ({ child, written } = startEntryPoint(dir, {
      CONFIG_FILE: DEFAULT_CONFIG,
      PORT: String(port),
      // The one setting added to npm start's: the management listener, as a deployment turns it on.
      MANAGEMENT_PORT: String(managementPort),
    }));
    // main.ts prints its URLs in one write, after the log's "listening".
    await waitFor(
      () => written.stdout.includes('Try a login'),
      () => `${written.stdout}${written.stderr}`,
    );
  }, 60_000);

  afterAll(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the demo and the sandbox page, and both answer', async () => {
    expect(written.stdout).toContain(`Try a login: open http://localhost:${port}/demo`);
    const sandboxPage = /The WeChat sandbox's page \(its users, faults\): (http:\/\/\S+\/sandbox)\n/.exec(
      written.stdout,
    )?.[1];
    expect(sandboxPage).toBeDefined();

    const page = await fetch(sandboxPage as string);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);

    const discovery = await fetch(`http://localhost:${port}/.well-known/openid-configuration`);
    expect(discovery.status).toBe(200);
    expect(((await discovery.json()) as { issuer: string }).issuer).toBe(`http://localhost:${port}`);
  });

  it('names its management listener and its version in the "listening" line, and serves /metrics there, not on the public port', async () => {
    const listening = written.stdout
      .split('\n')
      .find((line) => line.includes('"msg":"wechat-oidc-bridge listening"'));
    const metrics = `http://127.0.0.1:${managementPort}/metrics`;
    const version = await packageVersion();
    expect(JSON.parse(listening ?? '{}')).toMatchObject({
      issuer: `http://localhost:${port}`,
      metrics,
      version,
    });
    const scrape = await fetch(metrics);
    expect(scrape.status).toBe(200);
    const text = await scrape.text();
    expect(text).toContain('http_requests_total');
    // Which release each instance of a fleet runs, as Prometheus's build_info idiom has it.
    expect(text).toContain(`wechat_oidc_bridge_build_info{version="${version}"} 1`);
    expect((await fetch(`http://localhost:${port}/metrics`)).status).toBe(404);
  });

  it('keeps its data in ./data, private to its user', async () => {
    expect((await stat(join(dir, 'data'))).mode & 0o777).toBe(0o700);
  });

  it('stops cleanly on SIGTERM, and printed no secret and no error', async () => {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const output = written.stdout + written.stderr;
    for (const secret of [
      'sandbox-website-secret',
      'sandbox-official-account-secret',
      'sandbox-mini-program-secret',
    ])
      expect(output).not.toContain(secret);
    expect(output).toContain('"level":"info"'); // the log is on stdout, in this form
    expect(output).not.toMatch(/"level":"(error|fatal)"/);
  });
});

describe('the entry point with a client oidc-provider refuses', () => {
  // Regression: oidc-provider checks a configured client at its first use only, so the server
  // started, and the first person to log in read "登录请求有误：redirect_uris must not contain
  // fragments", the log naming neither the client nor the reason.
  it('refuses to start, naming the client and the field, and listens nowhere', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wob-entry-refused-'));
    try {
      const port = await freePort();
      const configFile = join(dir, 'config.json');
      await writeFile(
        configFile,
        JSON.stringify({
          clients: [
            {
              client_id: 'partner-portal',
              client_secret: 'partner-secret-0123456789abcdefghijklmnopqrstuvwxyz',
              redirect_uris: ['https://partners.example.com/cb#frag'],
            },
            {
              client_id: 'signed-jwt',
              token_endpoint_auth_method: 'private_key_jwt',
              redirect_uris: ['https://signed.example.com/cb'],
            },
          ],
        }),
      );
      const { child, written } = startEntryPoint(dir, { CONFIG_FILE: configFile, PORT: String(port) });
      // A server that started anyway is stopped, and the test fails on its exit code.
      const stop = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const [code] = await once(child, 'exit').finally(() => clearTimeout(stop));
      const output = written.stdout + written.stderr;
      expect(code).toBe(1);
      expect(output).toContain(
        '  clients[0].redirect_uris: oidc-provider refuses client "partner-portal": redirect_uris must not contain fragments\n',
      );
      expect(output).toContain(
        '  clients[1].jwks: oidc-provider refuses client "signed-jwt": jwks or jwks_uri is mandatory for this client\n',
      );
      expect(output).not.toContain('listening');
      expect(output).not.toContain('partner-secret');
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('the entry point and what libraries print', () => {
  const redisUrl = new URL(testRedisUrl());
  // The notice below needs a Redis without a password, as the suite's own usually is.
  it.skipIf(redisUrl.password !== '')(
    "a library's console notice is a JSON line of the log, not raw text on standard error",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'wob-entry-console-'));
      const { prefix, cleanup } = await createTestRedis();
      try {
        const port = await freePort();
        const configFile = join(dir, 'config.json');
        await writeFile(configFile, JSON.stringify({ storage: { redisKeyPrefix: prefix } }));
        // A password this Redis does not need: ioredis says so with console.warn.
        redisUrl.password = 'not-needed-here';
        const { child, written } = startEntryPoint(dir, {
          CONFIG_FILE: configFile,
          PORT: String(port),
          REDIS_URL: redisUrl.href,
        });
        try {
          await waitFor(
            () => written.stdout.includes('does not require a password'),
            () => written.stdout + written.stderr,
          );
          const notice = written.stdout
            .split('\n')
            .find((line) => line.includes('does not require a password'));
          expect(JSON.parse(notice as string)).toMatchObject({ level: 'warn', source: 'console' });
          expect(written.stderr).toBe('');
          expect(written.stdout).not.toContain('not-needed-here');
        } finally {
          child.kill('SIGKILL');
          await once(child, 'exit');
        }
      } finally {
        await cleanup();
        await rm(dir, { recursive: true, force: true });
      }
    },
    30_000,
  );
});

describe('the entry point told to stop while it starts', () => {
  // As PID 1 in a container a signal without a handler is ignored: one sent while the stores
  // connect (or migrations run) waited out the orchestrator's grace period and a SIGKILL.
  it('exits at once, without waiting for the stores', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wob-entry-starting-'));
    // A PostgreSQL that accepts the connection and never answers: the start waits on it.
    const shared = new URL(testDatabaseAdminUrl());
    const hung = await startTcpRelay({ host: shared.hostname, port: Number(shared.port || 5432) });
    hung.hang();
    try {
      const port = await freePort();
      const { child, written } = startEntryPoint(dir, {
        CONFIG_FILE: DEFAULT_CONFIG,
        PORT: String(port),
        DATABASE_URL: `postgres://postgres@127.0.0.1:${hung.port}/never`,
      });
      // It listens before it opens its stores, answering 503 "starting": it is now waiting on them.
      let starting = false;
      await waitFor(
        () => starting,
        () => written.stdout + written.stderr,
        async () => {
          starting = (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 503;
        },
      );
      child.kill('SIGTERM');
      // Well inside the 10 s the connection would take to time out.
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      const [code, signal] = await once(child, 'exit').finally(() => clearTimeout(killer));
      const output = written.stdout + written.stderr;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(output).toContain('"msg":"shutting down"');
      expect(output).not.toContain('listening');
    } finally {
      await hung.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('the entry point failing to start once its log exists', () => {
  // The log is JSON lines on standard output; the reason went to standard error alone, so a log
  // pipeline saw the last line before the exit and not why (an operator's review).
  it('says why in a fatal log line as well as on standard error, without the password', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wob-entry-failed-'));
    try {
      const port = await freePort();
      const { child, written } = startEntryPoint(dir, {
        CONFIG_FILE: DEFAULT_CONFIG,
        PORT: String(port),
        DATABASE_URL: 'postgres://wob:hunter2-db@127.0.0.1:1/wob',
      });
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const [code] = await once(child, 'exit').finally(() => clearTimeout(killer));
      const reason =
        'cannot connect to PostgreSQL at postgres://127.0.0.1:1/wob (DATABASE_URL or storage.databaseUrl): connect ECONNREFUSED 127.0.0.1:1';
      expect(code).toBe(1);
      expect(written.stderr).toBe(`wechat-oidc-bridge failed to start: ${reason}\n`);
      const last = written.stdout.trimEnd().split('\n').at(-1) as string;
      expect(JSON.parse(last)).toMatchObject({
        level: 'fatal',
        reason,
        version: await packageVersion(),
        msg: 'wechat-oidc-bridge failed to start',
      });
      expect(written.stdout + written.stderr).not.toContain('hunter2');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

const DEFAULT_CONFIG = join(PACKAGE_ROOT, 'config', 'default.yaml');

/** The release the log lines and the build_info metric are to name: package.json's, read here. */
async function packageVersion(): Promise<string> {
  return (JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/** What the process has written so far. */
interface Written {
  stdout: string;
  stderr: string;
}

/** src/main.ts from `dir`, with these settings over a bare environment, as a person would start it. */
function startEntryPoint(dir: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'src', 'main.ts')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const written: Written = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk) => {
    written.stdout += String(chunk);
  });
  child.stderr.on('data', (chunk) => {
    written.stderr += String(chunk);
  });
  return { child, written };
}

async function waitFor(
  done: () => boolean,
  describe: () => string,
  look: () => Promise<void> = async () => {},
): Promise<void> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    await look();
    if (done()) return;
    if (Date.now() > deadline) throw new Error(`the server did not start:\n${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
