import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

let dir: string;
let count = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wob-oa-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(content: object) {
  count += 1;
  const file = join(dir, `config-${count}.json`);
  await writeFile(file, JSON.stringify(content));
  return loadConfig({ env: { OA: 'oa-secret', WEB: 'web-secret' }, file });
}

async function problemsOf(content: object): Promise<readonly string[]> {
  const error = await load(content).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems;
}

const website = { kind: 'website', appid: 'wx0123456789abcdef', secret: { env: 'WEB' } };
const official = { kind: 'official_account', appid: 'wx00112233445566aa', secret: { env: 'OA' } };

describe('official account options', () => {
  it('gives an official account the base_then_userinfo policy by default, and other kinds none', async () => {
    const config = await load({ wechat: { apps: [website, official] } });
    expect(config.wechat.apps[0]).not.toHaveProperty('scopePolicy');
    expect(config.wechat.apps[1]?.scopePolicy).toBe('base_then_userinfo');
  });

  it('keeps scopePolicy: userinfo', async () => {
    const config = await load({ wechat: { apps: [{ ...official, scopePolicy: 'userinfo' }] } });
    expect(config.wechat.apps[0]?.scopePolicy).toBe('userinfo');
  });

  it('refuses an unknown policy, and a policy on an app that is not an official account', async () => {
    expect(await problemsOf({ wechat: { apps: [{ ...official, scopePolicy: 'snsapi_base' }] } })).toEqual([
      'wechat.apps[0].scopePolicy: must be one of: base_then_userinfo, userinfo',
    ]);
    expect(await problemsOf({ wechat: { apps: [{ ...website, scopePolicy: 'userinfo' }] } })).toEqual([
      'wechat.apps[0].scopePolicy: applies to official_account apps only',
    ]);
  });

  it('takes the MP_verify tokens, letters and digits only', async () => {
    const config = await load({ wechat: { mpVerifyTokens: ['HzPnYOUNdYYAAAAA'] } });
    expect(config.wechat.mpVerifyTokens).toEqual(['HzPnYOUNdYYAAAAA']);
    expect(await problemsOf({ wechat: { mpVerifyTokens: ['../etc/passwd', 'MP_verify_x.txt'] } })).toEqual([
      'wechat.mpVerifyTokens[0]: must be the letters and digits of MP_verify_<token>.txt',
      'wechat.mpVerifyTokens[1]: must be the letters and digits of MP_verify_<token>.txt',
    ]);
  });
});

describe('an Official Account behind an issuer with a port', () => {
  const PORT_WARNING = /^issuer: names a port, and WeChat refuses an Official Account authorization .*10003/;

  async function warningsOf(content: object, env: Record<string, string> = {}): Promise<string[]> {
    count += 1;
    const file = join(dir, `config-${count}.json`);
    await writeFile(file, JSON.stringify(content));
    const warnings: string[] = [];
    await loadConfig({
      env: { OA: 'oa-secret', WEB: 'web-secret', ...env },
      file,
      onWarning: (w) => warnings.push(w),
    });
    return warnings;
  }

  it('is warned about in development: the default issuer http://localhost:3000 and an explicit port', async () => {
    expect(
      (await warningsOf({ wechat: { apps: [official] } })).filter((w) => PORT_WARNING.test(w)),
    ).toHaveLength(1);
    const env = { ISSUER: 'https://id.example.com:8443' };
    expect(
      (await warningsOf({ wechat: { apps: [official] } }, env)).filter((w) => PORT_WARNING.test(w)),
    ).toHaveLength(1);
  });

  it("is not warned about without an Official Account, without a port, or with the sandbox in WeChat's place", async () => {
    const quiet = [
      await warningsOf({ wechat: { apps: [website] } }),
      await warningsOf({ issuer: 'https://id.example.com', wechat: { apps: [official] } }),
      await warningsOf({ wechat: { apps: [official] }, sandbox: { enabled: true } }),
    ];
    for (const warnings of quiet) expect(warnings.filter((w) => PORT_WARNING.test(w))).toEqual([]);
  });

  it('is refused in production', async () => {
    count += 1;
    const file = join(dir, `config-${count}.json`);
    await writeFile(
      file,
      JSON.stringify({
        issuer: 'https://id.example.com:8443',
        behindTlsProxy: true,
        trustProxy: true,
        wechat: { apps: [official] },
      }),
    );
    const error = await loadConfig({ env: { OA: 'oa-secret', NODE_ENV: 'production' }, file }).catch(
      (e: unknown) => e,
    );
    expect((error as ConfigError).problems.filter((p) => PORT_WARNING.test(p))).toHaveLength(1);
  });
});
