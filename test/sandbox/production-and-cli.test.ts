import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import type { Config } from '../../src/config/types.ts';
import { DEFAULT_APP, parseSandboxArgs } from '../../src/sandbox/cli-options.ts';
import { startSandbox } from '../../src/sandbox/embedded.ts';
import { assertSandboxAllowed } from '../../src/sandbox/production-guard.ts';

const MAIN = fileURLToPath(new URL('../../src/sandbox/main.ts', import.meta.url));

function runCli(args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function collect(stream: NodeJS.ReadableStream | null): Promise<string> {
  let text = '';
  for await (const chunk of stream ?? []) text += String(chunk);
  return text;
}

function configFor(production: boolean, allowInProduction: boolean): Config {
  return {
    production,
    host: '127.0.0.1',
    dataDir: '/tmp/sandbox-test',
    wechat: {
      openBaseUrl: 'https://open.weixin.qq.com',
      apiBaseUrl: 'https://api.weixin.qq.com',
      timeoutMs: 1000,
      apps: [
        { kind: 'website', appid: 'wxembedded', name: 'Embedded', secret: new Secret('embedded-secret') },
      ],
    },
    sandbox: { enabled: true, port: 0, allowInProduction },
  } as Config;
}

describe('production refusal', () => {
  it('refuses the sandbox in production unless allowed', () => {
    expect(() => assertSandboxAllowed({ production: true, allowInProduction: false })).toThrow(/production/);
    expect(() => assertSandboxAllowed({ production: true, allowInProduction: true })).not.toThrow();
    expect(() => assertSandboxAllowed({ production: false, allowInProduction: false })).not.toThrow();
  });

  it('refuses to start the in-process sandbox in production', async () => {
    await expect(startSandbox(configFor(true, false))).rejects.toThrow(/allowInProduction/);
  });

  it('starts the in-process sandbox with the configured apps and their secrets', async () => {
    const sandbox = await startSandbox(configFor(false, false));
    try {
      const answer = await fetch(
        `${sandbox.url}/sns/oauth2/access_token?appid=wxembedded&secret=embedded-secret&code=x&grant_type=authorization_code`,
      );
      expect(JSON.parse(await answer.text()).errcode).toBe(40029); // the secret matched: only the code is wrong
    } finally {
      await sandbox.close();
    }
  });

  it('keeps the seeded people of the in-process sandbox across a restart, and makes those created at run time new people', async () => {
    const run = async () => {
      const sandbox = await startSandbox(configFor(false, false));
      try {
        const users = async () =>
          (await (await fetch(`${sandbox.url}/sandbox/users`)).json()) as { users: { unionid: string }[] };
        const seeded = (await users()).users[0]?.unionid;
        const created = (await (
          await fetch(`${sandbox.url}/sandbox/users`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ nickname: '李四' }),
          })
        ).json()) as { unionid: string };
        return { seeded, created: created.unionid };
      } finally {
        await sandbox.close();
      }
    };
    const [before, after] = [await run(), await run()];
    expect(after.seeded).toBe(before.seeded);
    expect(after.created).not.toBe(before.created);
  });

  it('makes the CLI exit with an error under NODE_ENV=production', async () => {
    const child = runCli(['--port', '0', '--app', 'website:wxcli:cli-secret-value'], {
      NODE_ENV: 'production',
    });
    const [stdout, stderr, [code]] = await Promise.all([
      collect(child.stdout),
      collect(child.stderr),
      once(child, 'exit'),
    ]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/must not run in production/);
    expect(stderr).not.toContain('cli-secret-value');
  });

  it('lets the CLI run in production with --allow-production and prints its URL', async () => {
    const child = runCli(['--port', '0', '--allow-production', '--app', 'website:wxcli:cli-secret-value'], {
      NODE_ENV: 'production',
    });
    try {
      const [firstChunk] = (await once(child.stdout!, 'data')) as [Buffer];
      const url = String(firstChunk).split('\n')[0]!;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const users = (await (await fetch(`${url}/sandbox/users`)).json()) as {
        users: Array<{ openids: object }>;
      };
      expect(Object.keys(users.users[0]!.openids)).toEqual(['wxcli']);
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});

describe('CLI arguments', () => {
  it('reads repeated --app kind:appid:secret[:unbound]', () => {
    const options = parseSandboxArgs([
      '--app',
      'website:wx1:se:cr:et',
      '--app',
      'official_account:wx2:secret2:unbound',
      '--port',
      '4999',
    ]);
    expect(options.apps).toEqual([
      { kind: 'website', appid: 'wx1', secret: 'se:cr:et', boundToOpenPlatform: true },
      { kind: 'official_account', appid: 'wx2', secret: 'secret2', boundToOpenPlatform: false },
    ]);
    expect(options.port).toBe(4999);
    expect(options.host).toBe('127.0.0.1');
  });

  it('uses the default website app without --app', () => {
    expect(parseSandboxArgs([]).apps).toEqual([DEFAULT_APP]);
  });

  it('rejects malformed apps and options without echoing the secret', () => {
    expect(() => parseSandboxArgs(['--app', 'desktop:wx1:topsecret'])).toThrow(/kind:appid:secret/);
    expect(() => parseSandboxArgs(['--app', 'desktop:wx1:topsecret'])).not.toThrow(/topsecret/);
    expect(() => parseSandboxArgs(['--port', 'abc'])).toThrow(/--port/);
    expect(() => parseSandboxArgs(['--deny-mode', 'maybe'])).toThrow(/--deny-mode/);
    expect(() => parseSandboxArgs(['--bogus'])).toThrow();
  });
});
