import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { transportProblems } from '../../src/config/policy.ts';
import type { Config } from '../../src/config/types.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { startServer } from '../../src/server.ts';

let dir: string;
let count = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wob-https-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A production file with every other production rule satisfied, plus `extra`. */
async function productionFile(extra: Record<string, unknown>): Promise<string> {
  count += 1;
  const file = join(dir, `config-${count}.json`);
  await writeFile(
    file,
    JSON.stringify({
      oidc: { jwks: { env: 'JWKS' }, cookieKeys: [{ env: 'COOKIE_KEY' }] },
      ...extra,
    }),
  );
  return file;
}

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  NODE_ENV: 'production',
  JWKS: JSON.stringify({
    keys: [
      {
        ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
        kid: 'k',
      },
    ],
  }),
  COOKIE_KEY: 'cookie-key-0123456789abcdefghijklmnopqrstuv',
  ...extra,
});

async function problems(file: string, environment: NodeJS.ProcessEnv): Promise<readonly string[]> {
  const error = await loadConfig({ env: environment, file }).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (error === undefined) return [];
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems;
}

describe('HTTPS in production', () => {
  it('refuses an http issuer, saying why', async () => {
    const found = await problems(await productionFile({ issuer: 'http://id.example.com' }), env());
    expect(found).toEqual([
      'issuer: must be an https:// URL in production: browsers send cookies, WeChat codes and tokens to it and relying parties verify it exactly (set issuer or ISSUER to the public https URL)',
    ]);
  });

  it('refuses the default issuer (http://localhost:<port>)', async () => {
    const found = await problems(await productionFile({}), env());
    expect(found).toEqual([expect.stringMatching(/^issuer: must be an https:\/\/ URL in production/)]);
  });

  it('refuses an https issuer when the config does not name the TLS-terminating proxy', async () => {
    const found = await problems(
      await productionFile({ issuer: 'https://id.example.com', trustProxy: true }),
      env(),
    );
    expect(found).toEqual([
      'behindTlsProxy: must be true in production: the issuer is https but this server speaks plain HTTP, so a TLS-terminating reverse proxy must be in front of it; say so with behindTlsProxy: true',
    ]);
  });

  it('refuses a TLS-terminating proxy without trustProxy, in production and in development', async () => {
    const file = await productionFile({ issuer: 'https://id.example.com', behindTlsProxy: true });
    const expected = [expect.stringMatching(/^trustProxy: must be true behind a TLS-terminating proxy/)];
    expect(await problems(file, env())).toEqual(expected);
    expect(await problems(file, env({ NODE_ENV: 'development' }))).toEqual(expected);
  });

  it('starts with an https issuer behind a named TLS proxy with trustProxy', async () => {
    const file = await productionFile({
      issuer: 'https://id.example.com',
      trustProxy: true,
      behindTlsProxy: true,
    });
    const config = await loadConfig({ env: env(), file });
    expect(config).toMatchObject({
      issuer: 'https://id.example.com',
      trustProxy: true,
      behindTlsProxy: true,
    });
  });

  it('judges the issuer the environment sets (ISSUER), not the one in the file', async () => {
    const file = await productionFile({
      issuer: 'http://internal:3000',
      trustProxy: true,
      behindTlsProxy: true,
    });
    expect(await problems(file, env({ ISSUER: 'https://id.example.com' }))).toEqual([]);
    const https = await productionFile({
      issuer: 'https://id.example.com',
      trustProxy: true,
      behindTlsProxy: true,
    });
    expect(await problems(https, env({ ISSUER: 'http://id.example.com' }))).toEqual([
      expect.stringMatching(/^issuer: must be an https:\/\/ URL in production/),
    ]);
  });

  it('lets development use a plain http issuer', () => {
    expect(
      transportProblems({
        production: false,
        issuer: 'http://localhost:3000',
        trustProxy: false,
        behindTlsProxy: false,
      }),
    ).toEqual([]);
  });

  it('is enforced by startServer too, for a configuration built in code, before anything starts', async () => {
    const config = {
      production: true,
      issuer: 'http://id.example.com',
      trustProxy: false,
      behindTlsProxy: false,
      port: 0,
      host: '127.0.0.1',
      sandbox: { enabled: false, port: 0, allowInProduction: false },
    } as unknown as Config;
    await expect(startServer(config, { logger: createLogger({ level: 'silent' }) })).rejects.toThrow(
      /^refusing to start: issuer must be an https:\/\/ URL in production/,
    );
  });
});
