import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { accountPageClient } from '../../src/account-page/client.ts';
import { ConfigError, loadConfig, packageRoot } from '../../src/config/load.ts';
import { redactConfig, redactUrlPassword } from '../../src/config/redact.ts';
import { DEMO_CLIENT_ID } from '../../src/config/schema.ts';
import { Secret } from '../../src/config/secret.ts';
import { createDemo } from '../../src/demo/demo-client.ts';
import { ENGINE_MAX_BODY_BYTES } from '../../src/http/request-limits.ts';
import { createViews } from '../../src/http/views.ts';

const APPID_A = 'wx0123456789abcdef';
const APPID_B = 'wxfedcba9876543210';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wob-config-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;

/** Writes a config (YAML text, or an object as JSON) into the test folder and returns its path. */
async function writeConfig(
  content: string | object,
  extension = typeof content === 'string' ? 'yaml' : 'json',
) {
  fileCount += 1;
  const file = join(dir, `config-${fileCount}.${extension}`);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

async function problemsOf(promise: Promise<unknown>): Promise<readonly string[]> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems;
}

function privateJwk(): Record<string, unknown> {
  return {
    ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
    kid: 'k1',
  };
}

/** An RSA signing key: RS256 is what clients get unless they register another algorithm. */
const rsaJwk: Record<string, unknown> = {
  ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: 'rsa-1',
};

/** A file that passes the production checks, with every secret from the environment. */
const productionFile = {
  issuer: 'https://id.example.com',
  trustProxy: true,
  behindTlsProxy: true,
  wechat: { apps: [{ kind: 'website', appid: APPID_A, secret: { env: 'APP_SECRET' } }] },
  oidc: { jwks: { env: 'JWKS' }, cookieKeys: [{ env: 'COOKIE_KEY' }] },
  management: { port: 9464 },
  storage: { databaseUrl: 'postgres://wob@db.internal:5432/wob', redisUrl: 'redis://cache.internal:6379' },
};

function productionEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'production',
    APP_SECRET: 'app-secret-from-env',
    JWKS: JSON.stringify({ keys: [rsaJwk, privateJwk()] }),
    COOKIE_KEY: 'cookie-key-from-env-0123456789abcdefghij',
    ...extra,
  };
}

describe('loadConfig defaults', () => {
  it('takes the abuse limits from the file', async () => {
    const file = await writeConfig(
      'limits:\n  maxBodyBytes: 1024\n  rateLimits:\n    token: { points: 5, durationSeconds: 10 }\n',
    );
    const config = await loadConfig({ env: {}, file });
    expect(config.limits?.maxBodyBytes).toBe(1024);
    expect(config.limits?.rateLimits.token).toEqual({ points: 5, durationSeconds: 10 });
  });

  // Regression: the default was 65,536, past the 56 KiB oidc-provider reads on its endpoints.
  it("refuses a body limit past oidc-provider's own, which is the default", async () => {
    const problems = await problemsOf(
      loadConfig({ env: {}, file: await writeConfig('limits:\n  maxBodyBytes: 65536\n') }),
    );
    expect(problems).toEqual([
      'limits.maxBodyBytes: must be at most 57344 (56 KiB): oidc-provider reads no larger body on its endpoints',
    ]);
    const config = await loadConfig({ env: {}, file: await writeConfig('limits: {}\n') });
    expect(config.limits?.maxBodyBytes).toBe(ENGINE_MAX_BODY_BYTES);
  });

  it('takes the headers deadline from the file, and refuses one past a minute', async () => {
    const config = await loadConfig({ env: {}, file: await writeConfig('limits:\n  headersTimeout: 5\n') });
    expect(config.limits?.headersTimeout).toBe(5);
    const problems = await problemsOf(
      loadConfig({ env: {}, file: await writeConfig('limits:\n  headersTimeout: 61\n') }),
    );
    expect(problems).toEqual([expect.stringMatching(/^limits\.headersTimeout: /)]);
  });

  it("takes the account page's recent-login window from the file, and refuses one under a second", async () => {
    const config = await loadConfig({ env: {}, file: await writeConfig('account:\n  recentLogin: 300\n') });
    expect(config.account).toEqual({ recentLogin: 300 });
    await expect(
      loadConfig({ env: {}, file: await writeConfig('account:\n  recentLogin: 0\n') }),
    ).rejects.toThrow(/account\.recentLogin/);
  });

  it('takes the shutdown delay and timeout from the file, and refuses a negative delay or a zero timeout', async () => {
    const config = await loadConfig({
      env: {},
      file: await writeConfig('shutdown:\n  delay: 5\n  timeout: 30\n'),
    });
    expect(config.shutdown).toEqual({ delay: 5, timeout: 30 });
    await expect(
      loadConfig({ env: {}, file: await writeConfig('shutdown:\n  delay: -1\n  timeout: 0\n') }),
    ).rejects.toThrow(/shutdown\.delay.*\n.*shutdown\.timeout/);
  });

  it('fills every option from its default for an empty file', async () => {
    const config = await loadConfig({ env: {}, file: await writeConfig('') });
    expect(config).toEqual({
      production: false,
      port: 3000,
      host: '127.0.0.1',
      issuer: 'http://localhost:3000',
      trustProxy: false,
      behindTlsProxy: false,
      dataDir: resolve('data'),
      log: { level: 'info', requests: 'failures' },
      storage: { databaseUrl: undefined, redisUrl: undefined, redisKeyPrefix: 'wob:' },
      wechat: {
        openBaseUrl: 'https://open.weixin.qq.com',
        apiBaseUrl: 'https://api.weixin.qq.com',
        timeoutMs: 5000,
        apps: [],
        mpVerifyTokens: [],
        miniProgram: { sessionKeyTtl: 1209600, encryptedDataMaxAge: 600 },
      },
      oidc: {
        jwks: undefined,
        cookieKeys: undefined,
        ttl: {
          interaction: 600,
          session: 1209600,
          grant: 1209600,
          accessToken: 3600,
          idToken: 3600,
          refreshToken: 1209600,
          authorizationCode: 60,
        },
      },
      avatars: {
        allowedHosts: ['thirdwx.qlogo.cn', 'wx.qlogo.cn'],
        cacheMaxAge: 86400,
        maxBytes: 1048576,
        retryAfter: 600,
        timeoutMs: 3000,
      },
      account: { recentLogin: 600 },
      shutdown: { delay: 0, timeout: 10 },
      limits: {
        maxBodyBytes: 57344,
        headersTimeout: 20,
        rateLimits: {
          enabled: true,
          interaction: { points: 300, durationSeconds: 60 },
          callback: { points: 120, durationSeconds: 60 },
          token: { points: 300, durationSeconds: 60 },
          miniProgram: { points: 60, durationSeconds: 60 },
        },
      },
      clients: [],
      sandbox: { enabled: false, port: 0, allowInProduction: false },
      demo: { enabled: false },
    });
  });

  it('binds 0.0.0.0 by default in production', async () => {
    const config = await loadConfig({ env: productionEnv(), file: await writeConfig(productionFile) });
    expect(config.production).toBe(true);
    expect(config.host).toBe('0.0.0.0');
  });

  it('derives the default issuer from the effective port', async () => {
    const config = await loadConfig({ env: { PORT: '8080' }, file: await writeConfig({}) });
    expect(config.issuer).toBe('http://localhost:8080');
  });

  it('names an app by its appid when it has no name', async () => {
    const file = await writeConfig({
      wechat: { apps: [{ kind: 'mini_program', appid: APPID_A, secret: { value: 's' } }] },
    });
    const config = await loadConfig({ env: {}, file });
    expect(config.wechat.apps[0]?.name).toBe(APPID_A);
  });

  it('reads config/default.yaml from the package root when neither option nor CONFIG_FILE is given', async () => {
    const config = await loadConfig({ env: {} });
    expect(packageRoot()).toBe(resolve(import.meta.dirname, '../..'));
    expect(config.production).toBe(false);
    expect(config.sandbox.enabled).toBe(true);
    expect(config.demo.enabled).toBe(true);
    expect(config.clients.map((c) => c.client_id)).toEqual(['my-mini-program']);
    expect(config.wechat.apps).toHaveLength(3);
    expect(config.wechat.apps[0]).toMatchObject({ kind: 'website', name: 'Sandbox website' });
    expect(config.wechat.apps[1]).toMatchObject({
      kind: 'official_account',
      scopePolicy: 'base_then_userinfo',
    });
    expect(config.wechat.apps[0]?.appid).toMatch(/^wx[0-9a-f]{16}$/);
  });

  it('reads the file named by CONFIG_FILE', async () => {
    const file = await writeConfig({ port: 4100 });
    const config = await loadConfig({ env: { CONFIG_FILE: file } });
    expect(config.port).toBe(4100);
  });
});

describe('loadConfig file formats', () => {
  const yaml = `
port: 4000
issuer: https://id.example.com
trustProxy: true
log: { level: debug }
wechat:
  apps:
    - kind: official_account
      appid: ${APPID_B}
      name: OA
      secret: { value: oa-secret }
clients:
  - client_id: rp
    client_secret: rp-secret
    redirect_uris: [https://rp.example.com/cb]
    first_party: true
`;
  const json = {
    port: 4000,
    issuer: 'https://id.example.com',
    trustProxy: true,
    log: { level: 'debug' },
    wechat: {
      apps: [{ kind: 'official_account', appid: APPID_B, name: 'OA', secret: { value: 'oa-secret' } }],
    },
    clients: [
      {
        client_id: 'rp',
        client_secret: 'rp-secret',
        redirect_uris: ['https://rp.example.com/cb'],
        first_party: true,
      },
    ],
  };

  it('reads YAML and JSON files into the same configuration', async () => {
    const fromYaml = await loadConfig({ env: {}, file: await writeConfig(yaml, 'yml') });
    const fromJson = await loadConfig({ env: {}, file: await writeConfig(json) });
    expect(JSON.stringify(fromYaml)).toBe(JSON.stringify(fromJson));
    expect(fromYaml).toMatchObject({ port: 4000, issuer: 'https://id.example.com', trustProxy: true });
    expect(fromYaml.log.level).toBe('debug');
    expect(fromYaml.wechat.apps[0]?.secret.reveal()).toBe('oa-secret');
    expect(fromYaml.clients[0]).toEqual({
      client_id: 'rp',
      client_secret: 'rp-secret',
      redirect_uris: ['https://rp.example.com/cb'],
      first_party: true,
    });
  });

  it('refuses a file that is neither YAML nor JSON by extension', async () => {
    const problems = await problemsOf(loadConfig({ env: {}, file: await writeConfig('port: 1', 'toml') }));
    expect(problems).toEqual(['config file: must end in .yaml, .yml or .json']);
  });

  it('reports a missing config file', async () => {
    const problems = await problemsOf(loadConfig({ env: {}, file: join(dir, 'absent.yaml') }));
    expect(problems).toEqual(['config file: does not exist']);
  });

  it('reports a YAML syntax error by position without quoting the file', async () => {
    const file = await writeConfig('wechat:\n  apps: [{ secret: { value: "leaky-literal }\n');
    const error = await loadConfig({ env: {}, file }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/config file: invalid YAML/);
    expect((error as Error).message).not.toContain('leaky-literal');
  });

  it('reports a JSON syntax error without quoting the file', async () => {
    const file = await writeConfig('{ "oidc": { "cookieKeys": [{ "value": "leaky-literal" }] ', 'json');
    const error = await loadConfig({ env: {}, file }).catch((thrown: unknown) => thrown);
    expect((error as Error).message).toMatch(/config file: invalid JSON/);
    expect((error as Error).message).not.toContain('leaky-literal');
  });
});

describe('loadConfig environment overrides', () => {
  const file = {
    port: 3001,
    issuer: 'https://file.example.com',
    storage: { databaseUrl: 'postgres://file-db/wob', redisUrl: 'redis://file-redis:6379' },
    wechat: { openBaseUrl: 'https://open.file.example', apiBaseUrl: 'https://api.file.example' },
  };

  it.each([
    ['PORT', '8443', (config) => config.port, 8443],
    ['ISSUER', 'https://env.example.com/oidc', (config) => config.issuer, 'https://env.example.com/oidc'],
    [
      'DATABASE_URL',
      'postgresql://env-db/wob',
      (config) => config.storage.databaseUrl,
      'postgresql://env-db/wob',
    ],
    ['REDIS_URL', 'rediss://env-redis:6380', (config) => config.storage.redisUrl, 'rediss://env-redis:6380'],
    [
      'WECHAT_OPEN_BASE_URL',
      'http://127.0.0.1:9001',
      (config) => config.wechat.openBaseUrl,
      'http://127.0.0.1:9001',
    ],
    [
      'WECHAT_API_BASE_URL',
      'http://127.0.0.1:9002/',
      (config) => config.wechat.apiBaseUrl,
      'http://127.0.0.1:9002',
    ],
  ] as Array<[string, string, (config: Awaited<ReturnType<typeof loadConfig>>) => unknown, unknown]>)(
    '%s overrides the file',
    async (name, value, pick, expected) => {
      const path = await writeConfig(file);
      const without = await loadConfig({ env: {}, file: path });
      const overridden = await loadConfig({ env: { [name]: value }, file: path });
      expect(pick(without)).not.toEqual(expected);
      expect(pick(overridden)).toEqual(expected);
    },
  );

  it('treats an empty variable as unset', async () => {
    const config = await loadConfig({ env: { REDIS_URL: '', PORT: '' }, file: await writeConfig(file) });
    expect(config.storage.redisUrl).toBe('redis://file-redis:6379');
    expect(config.port).toBe(3001);
  });

  it('sets production from NODE_ENV=production only', async () => {
    const path = await writeConfig(productionFile);
    expect((await loadConfig({ env: productionEnv(), file: path })).production).toBe(true);
    expect(
      (await loadConfig({ env: productionEnv({ NODE_ENV: 'development' }), file: path })).production,
    ).toBe(false);
  });

  it.each(['0', '65536', 'http', '80.5', '-1'])('refuses PORT=%s', async (port) => {
    const problems = await problemsOf(loadConfig({ env: { PORT: port }, file: await writeConfig({}) }));
    expect(problems).toEqual(['PORT: must be an integer from 1 to 65535']);
  });

  it('checks every overriding variable without quoting its value', async () => {
    const env = {
      ISSUER: 'https://id.example.com/',
      DATABASE_URL: 'mysql://user:db-password@host/db',
      REDIS_URL: 'http://:redis-password@host',
      WECHAT_OPEN_BASE_URL: 'ftp://open',
      WECHAT_API_BASE_URL: 'not a url',
    };
    const error = await loadConfig({ env, file: await writeConfig({}) }).catch((thrown: unknown) => thrown);
    expect((error as ConfigError).problems).toEqual([
      'ISSUER: must not end with "/"',
      'DATABASE_URL: must be a postgres:// or postgresql:// URL',
      'REDIS_URL: must be a redis://, rediss://, redis+cluster:// or redis+sentinel:// URL (rediss+… with TLS)',
      'WECHAT_OPEN_BASE_URL: must be an absolute http(s) URL',
      'WECHAT_API_BASE_URL: must be an absolute http(s) URL',
    ]);
    expect((error as Error).message).not.toMatch(/db-password|redis-password/);
  });
});

describe('loadConfig WeChat base URLs', () => {
  const OPEN_REFUSAL =
    "must not contain credentials (user:password@): it is copied into the QR code frame and the redirects people's browsers receive";
  const API_REFUSAL =
    'must not contain credentials (user:password@): WeChat calls go to its origin and path and would never send them, while check-config would print them';

  // Regression: WECHAT_API_BASE_URL=https://u:SECRET@proxy.example/wx was accepted and printed by
  // check-config as written; an openBaseUrl with credentials reached browsers in the QR frame's src.
  it('refuses credentials in either, from the file or the environment, without quoting them', async () => {
    const file = await writeConfig({
      wechat: {
        openBaseUrl: 'https://u:file-open-secret@open.example/wx',
        apiBaseUrl: 'https://user-only@api.example',
      },
    });
    const fromFile = await loadConfig({ env: {}, file }).catch((thrown: unknown) => thrown);
    expect((fromFile as ConfigError).problems).toEqual([
      `wechat.openBaseUrl: ${OPEN_REFUSAL}`,
      `wechat.apiBaseUrl: ${API_REFUSAL}`,
    ]);
    const env = {
      WECHAT_OPEN_BASE_URL: 'https://:env-open-secret@open.example',
      WECHAT_API_BASE_URL: 'https://u:env-api-secret@proxy.example/wx',
    };
    const fromEnv = await loadConfig({ env, file: await writeConfig({}) }).catch((thrown: unknown) => thrown);
    expect((fromEnv as ConfigError).problems).toEqual([
      `WECHAT_OPEN_BASE_URL: ${OPEN_REFUSAL}`,
      `WECHAT_API_BASE_URL: ${API_REFUSAL}`,
    ]);
    for (const error of [fromFile, fromEnv]) {
      expect((error as Error).message).not.toMatch(
        /file-open-secret|user-only|env-open-secret|env-api-secret/,
      );
    }
  });

  it('keeps a proxy path, and an @ in it', async () => {
    const env = { WECHAT_API_BASE_URL: 'https://proxy.example/wx/@team/' };
    const config = await loadConfig({ env, file: await writeConfig({}) });
    expect(config.wechat.apiBaseUrl).toBe('https://proxy.example/wx/@team');
  });
});

describe('loadConfig management listener', () => {
  it('has none unless a management port is set: /metrics stays on the main port', async () => {
    const config = await loadConfig({ env: {}, file: await writeConfig({ port: 3001 }) });
    expect(config).not.toHaveProperty('management');
  });

  it("binds the main server's host unless told otherwise", async () => {
    const file = await writeConfig({ host: '10.0.0.5', management: { port: 9464 } });
    expect((await loadConfig({ env: {}, file })).management).toEqual({ port: 9464, host: '10.0.0.5' });
    const own = await writeConfig({ host: '10.0.0.5', management: { port: 9464, host: '127.0.0.1' } });
    expect((await loadConfig({ env: {}, file: own })).management).toEqual({ port: 9464, host: '127.0.0.1' });
  });

  it('takes MANAGEMENT_PORT over the file, and opens the listener with it alone', async () => {
    const file = await writeConfig({ management: { port: 9464 } });
    const env = { MANAGEMENT_PORT: '9100' };
    expect((await loadConfig({ env, file })).management).toEqual({ port: 9100, host: '127.0.0.1' });
    const bare = await writeConfig({});
    expect((await loadConfig({ env, file: bare })).management).toEqual({ port: 9100, host: '127.0.0.1' });
    expect(await problemsOf(loadConfig({ env: { MANAGEMENT_PORT: '0' }, file: bare }))).toEqual([
      'MANAGEMENT_PORT: must be an integer from 1 to 65535',
    ]);
  });

  it('refuses a management port equal to the main port, naming where each came from', async () => {
    const reason = 'the management listener serves /metrics on a port of its own, which is never published';
    const same = await writeConfig({ port: 3001, management: { port: 3001 } });
    expect(await problemsOf(loadConfig({ env: {}, file: same }))).toEqual([
      `management.port: must differ from the main port (port, 3001): ${reason}`,
    ]);
    const other = await writeConfig({ port: 3001, management: { port: 9464 } });
    expect(await problemsOf(loadConfig({ env: { PORT: '9464' }, file: other }))).toEqual([
      `management.port: must differ from the main port (PORT, 9464): ${reason}`,
    ]);
    expect(await problemsOf(loadConfig({ env: { MANAGEMENT_PORT: '3001' }, file: other }))).toEqual([
      `MANAGEMENT_PORT: must differ from the main port (port, 3001): ${reason}`,
    ]);
    // The default main port counts too.
    const onDefault = await writeConfig({ management: { port: 3000 } });
    expect(await problemsOf(loadConfig({ env: {}, file: onDefault }))).toEqual([
      `management.port: must differ from the main port (port, 3000): ${reason}`,
    ]);
  });

  it('refuses a management host without a port, which would leave /metrics on the main port', async () => {
    const file = await writeConfig({ management: { host: '127.0.0.1' } });
    expect(await problemsOf(loadConfig({ env: {}, file }))).toEqual([
      'management.host: needs management.port (or MANAGEMENT_PORT): without a port there is no ' +
        'management listener, and /metrics stays on the main port',
    ]);
  });
});

describe('loadConfig secret references', () => {
  function appWithSecret(secret: unknown) {
    return { wechat: { apps: [{ kind: 'website', appid: APPID_A, secret }] } };
  }

  it('reads { env: NAME } from the environment', async () => {
    const file = await writeConfig(appWithSecret({ env: 'WECHAT_SECRET' }));
    const config = await loadConfig({ env: { WECHAT_SECRET: 'from-env' }, file });
    const secret = config.wechat.apps[0]?.secret;
    expect(secret).toBeInstanceOf(Secret);
    expect(secret?.reveal()).toBe('from-env');
  });

  it("reads { file: PATH } trimmed, relative to the config file's folder", async () => {
    await writeFile(join(dir, 'app-secret.txt'), '  from-file\n');
    const file = await writeConfig(appWithSecret({ file: 'app-secret.txt' }));
    const config = await loadConfig({ env: {}, file });
    expect(config.wechat.apps[0]?.secret.reveal()).toBe('from-file');
  });

  it('warns when a secret file can be written by its group or by every user, never for read access', async () => {
    const secretFile = join(dir, 'app-secret.txt');
    await writeFile(secretFile, 'from-file\n');
    const file = await writeConfig(appWithSecret({ file: 'app-secret.txt' }));
    const warningsAt = async (mode: number) => {
      await chmod(secretFile, mode);
      const warnings: string[] = [];
      await loadConfig({ env: {}, file, onWarning: (message) => warnings.push(message) });
      return warnings.filter((warning) => warning.startsWith('wechat.apps[0].secret'));
    };
    expect(await warningsAt(0o644)).toEqual([]);
    expect(await warningsAt(0o444)).toEqual([]);
    expect(await warningsAt(0o666)).toEqual([
      `wechat.apps[0].secret: file ${secretFile} can be written by its group and every user (mode 666), who could replace the secret; chmod go-w it`,
    ]);
    expect(await warningsAt(0o620)).toEqual([
      `wechat.apps[0].secret: file ${secretFile} can be written by its group (mode 620), who could replace the secret; chmod go-w it`,
    ]);
  });

  it('accepts { value } in development and warns about it', async () => {
    const warnings: string[] = [];
    const file = await writeConfig(appWithSecret({ value: 'literal' }));
    const config = await loadConfig({ env: {}, file, onWarning: (message) => warnings.push(message) });
    expect(config.wechat.apps[0]?.secret.reveal()).toBe('literal');
    expect(warnings).toContain(
      'wechat.apps[0].secret: literal secret in the config file (development only; production refuses it)',
    );
  });

  it('reports an environment variable that is not set', async () => {
    const file = await writeConfig(appWithSecret({ env: 'WECHAT_OA_SECRET' }));
    const problems = await problemsOf(loadConfig({ env: {}, file }));
    expect(problems).toEqual(['wechat.apps[0].secret: environment variable WECHAT_OA_SECRET is not set']);
  });

  it('reports a secret file that does not exist', async () => {
    const file = await writeConfig(appWithSecret({ file: 'no-such-secret' }));
    const problems = await problemsOf(loadConfig({ env: {}, file }));
    expect(problems).toEqual([`wechat.apps[0].secret: file ${join(dir, 'no-such-secret')} does not exist`]);
  });

  it('refuses a reference with more than one source', async () => {
    const file = await writeConfig(appWithSecret({ env: 'A', value: 'b' }));
    const problems = await problemsOf(loadConfig({ env: { A: 'a' }, file }));
    expect(problems).toEqual(['wechat.apps[0].secret: must have exactly one of env, file or value']);
  });

  it('resolves client_secret to the plain string oidc-provider needs, from a bare string or a reference', async () => {
    const file = await writeConfig({
      clients: [
        { client_id: 'a', client_secret: 'bare', redirect_uris: ['https://a.example/cb'] },
        { client_id: 'b', client_secret: { env: 'B_SECRET' }, redirect_uris: ['https://b.example/cb'] },
      ],
    });
    const config = await loadConfig({ env: { B_SECRET: 'from-env' }, file });
    expect(config.clients.map((client) => client.client_secret)).toEqual(['bare', 'from-env']);
  });

  it('resolves cookie keys into Secrets, in order', async () => {
    const oldKey = 'old-key-0123456789abcdefghijklmnopqrstu';
    const newKey = 'new-key-0123456789abcdefghijklmnopqrstu';
    const file = await writeConfig({ oidc: { cookieKeys: [{ env: 'NEW_KEY' }, { value: oldKey }] } });
    const config = await loadConfig({ env: { NEW_KEY: newKey }, file });
    expect(config.oidc.cookieKeys?.map((key) => key.reveal())).toEqual([newKey, oldKey]);
  });

  it('refuses a cookie key shorter than 32 characters, naming it and never its value', async () => {
    const file = await writeConfig({ oidc: { cookieKeys: [{ env: 'NEW_KEY' }, { env: 'OLD_KEY' }] } });
    const problems = await problemsOf(
      loadConfig({ env: { NEW_KEY: 'x'.repeat(32), OLD_KEY: 'short-secret' }, file }),
    );
    expect(problems).toEqual([
      'oidc.cookieKeys[1]: is 12 characters long; use at least 32 random ones (for example `openssl rand -base64 32`)',
    ]);
    expect(problems.join('\n')).not.toContain('short-secret');
  });

  it('parses a JWKS file with private keys', async () => {
    const jwk = privateJwk();
    await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
    const config = await loadConfig({
      env: {},
      file: await writeConfig({ oidc: { jwks: { file: 'jwks.json' } } }),
    });
    expect(config.oidc.jwks).toEqual({ keys: [jwk] });
  });

  it('refuses a JWKS key without its private part, naming the member, not the key', async () => {
    const { d: _d, ...publicJwk } = privateJwk();
    const file = await writeConfig({ oidc: { jwks: { env: 'JWKS' } } });
    const problems = await problemsOf(
      loadConfig({ env: { JWKS: JSON.stringify({ keys: [publicJwk] }) }, file }),
    );
    expect(problems).toEqual(['oidc.jwks.keys[0]: private key member(s) missing: d']);
  });

  it('refuses a JWKS that is not JSON, or a key of another type, without quoting it', async () => {
    const notJson = await problemsOf(
      loadConfig({
        env: { JWKS: '{"keys":[{"d":"secret-d"' },
        file: await writeConfig({ oidc: { jwks: { env: 'JWKS' } } }),
      }),
    );
    expect(notJson).toEqual(['oidc.jwks: environment variable JWKS does not hold valid JSON']);
    const oct = { keys: [{ kty: 'oct', k: 'c2VjcmV0LWs' }] };
    const octProblems = await problemsOf(
      loadConfig({ env: {}, file: await writeConfig({ oidc: { jwks: { value: oct } } }) }),
    );
    expect(octProblems).toEqual(['oidc.jwks.keys[0].kty: must be RSA, EC, OKP or AKP (a signing key pair)']);
  });

  it('refuses a JWK whose members do not form a valid key', async () => {
    const jwk = { ...privateJwk(), d: privateJwk().d };
    const file = await writeConfig({ oidc: { jwks: { value: { keys: [jwk] } } } });
    const problems = await problemsOf(loadConfig({ env: {}, file }));
    expect(problems).toEqual([
      'oidc.jwks.keys[0]: is not a valid EC private key (its members do not form a key pair)',
    ]);
  });
});

describe('loadConfig validation', () => {
  it('reports every problem at once, each with its path', async () => {
    const file = await writeConfig(`
port: "3000"
issuer: https://id.example.com/
colour: blue
wechat:
  apps:
    - { kind: website, appid: wx123, secret: { env: WECHAT_WEB_SECRET } }
    - { kind: official_account, appid: ${APPID_A}, secret: { env: WECHAT_OA_SECRET } }
    - { kind: mini_program, appid: ${APPID_A}, secret: { value: x } }
    - { kind: app, appid: ${APPID_B}, secret: { value: y } }
oidc:
  ttl: { interaction: 0 }
clients:
  - client_id: web
    client_secret: { env: WEB_SECRET }
    redirect_uris: [/callback]
    redirect_uri: https://typo.example
  - client_id: web
    token_endpoint_auth_method: none
    redirect_uris: [https://ok.example/cb]
  - client_id: confidential
    redirect_uris: [https://ok.example/cb]
`);
    const problems = await problemsOf(loadConfig({ env: { WECHAT_WEB_SECRET: 'w', WEB_SECRET: 's' }, file }));
    expect(problems).toEqual(
      expect.arrayContaining([
        'port: must be a number',
        'issuer: must not end with "/"',
        'colour: unknown option',
        'wechat.apps[0].appid: must be "wx" followed by 16 lowercase hex digits',
        'wechat.apps[1].secret: environment variable WECHAT_OA_SECRET is not set',
        `wechat.apps[2].appid: duplicate appid "${APPID_A}" (also at index 1)`,
        'wechat.apps[3].kind: must be one of: website, official_account, mini_program',
        'oidc.ttl.interaction: must be at least 1',
        'clients[0].redirect_uris[0]: must be an absolute http(s) URL',
        'clients[0].redirect_uri: unknown client metadata (not a standard registration name): did you mean redirect_uris?',
        'clients[1].client_id: duplicate client_id "web" (also at index 0)',
        'clients[2].client_secret: is required for token_endpoint_auth_method client_secret_basic',
      ]),
    );
    expect(problems).toHaveLength(12);
  });

  it.each([
    ['ftp://id.example.com', 'must be an absolute http(s) URL'],
    ['/relative', 'must be an absolute http(s) URL'],
    ['https://id.example.com?tenant=1', 'must not have a query'],
    ['https://id.example.com#top', 'must not have a fragment'],
    ['https://id.example.com/', 'must not end with "/"'],
  ])('refuses the issuer %s', async (issuer, message) => {
    const problems = await problemsOf(loadConfig({ env: {}, file: await writeConfig({ issuer }) }));
    expect(problems).toEqual([`issuer: ${message}`]);
  });

  it('keeps a path in the issuer', async () => {
    const config = await loadConfig({
      env: {},
      file: await writeConfig({ issuer: 'https://example.com/oidc' }),
    });
    expect(config.issuer).toBe('https://example.com/oidc');
  });

  it('passes standard client metadata it does not check through to oidc-provider', async () => {
    const client = {
      client_id: 'spa',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://localhost:5173/cb'],
      require_auth_time: true,
      default_max_age: 3600,
      application_type: 'web',
    };
    const config = await loadConfig({ env: {}, file: await writeConfig({ clients: [client] }) });
    expect(config.clients[0]).toEqual({ ...client, first_party: false });
  });

  it('refuses a client authentication method the provider does not enable (mutual TLS)', async () => {
    const client = { client_id: 'a', redirect_uris: ['https://a.example/cb'] };
    const file = await writeConfig({
      clients: [{ ...client, token_endpoint_auth_method: 'tls_client_auth' }],
    });
    const problems = await problemsOf(loadConfig({ env: {}, file }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^clients\[0\]\.token_endpoint_auth_method: .*private_key_jwt/);
  });

  it('requires a redirect URI for the code flow', async () => {
    const file = await writeConfig({ clients: [{ client_id: 'a', token_endpoint_auth_method: 'none' }] });
    const problems = await problemsOf(loadConfig({ env: {}, file }));
    expect(problems).toEqual([
      'clients[0].redirect_uris: must list at least one URI for the authorization_code grant',
    ]);
  });

  it('refuses a Redis key prefix with a hash tag, and a Redis URL it cannot read, naming each', async () => {
    const file = await writeConfig({
      storage: { redisKeyPrefix: 'wob{x}:', redisUrl: 'redis+sentinel://:secret-pw@s1:26379' },
    });
    const error = await loadConfig({ env: {}, file }).catch((thrown: unknown) => thrown);
    expect((error as ConfigError).problems).toEqual([
      'storage.redisUrl: a redis+sentinel:// URL needs the master name as its path: /<master>',
      'storage.redisKeyPrefix: must not contain { or } (a hash tag would put every key in one cluster slot)',
    ]);
    expect((error as Error).message).not.toContain('secret-pw');
  });

  it('names an option that no longer exists (log.pretty) as unknown', async () => {
    const file = await writeConfig('log:\n  level: info\n  pretty: false\n');
    const problems = await problemsOf(loadConfig({ env: {}, file }));
    expect(problems).toEqual(['log.pretty: unknown option']);
  });

  it('refuses the client_ids the server registers itself, demo only while the demo is on', async () => {
    const client = (client_id: string) => ({
      client_id,
      token_endpoint_auth_method: 'none',
      redirect_uris: ['https://rp.example/cb'],
    });
    const clients = [client('account-page'), client('demo'), client('web')];
    const withDemo = await writeConfig({ demo: { enabled: true }, clients });
    expect(await problemsOf(loadConfig({ env: {}, file: withDemo }))).toEqual([
      'clients[0].client_id: "account-page" is reserved: the account page (/account) registers a client with this id',
      'clients[1].client_id: "demo" is reserved while demo.enabled is true: the demo relying party (/demo) registers a client with this id',
    ]);
    const withoutDemo = await writeConfig({ demo: { enabled: false }, clients: clients.slice(1) });
    const config = await loadConfig({ env: {}, file: withoutDemo });
    expect(config.clients.map((each) => each.client_id)).toEqual(['demo', 'web']);
  });

  it('reserves the client_ids the account page and the demo really register', async () => {
    expect(accountPageClient('https://id.example.com').client_id).toBe('account-page');
    const demo = await createDemo('https://id.example.com', createViews({ assetBase: '/assets' }));
    expect(demo.client.client_id).toBe(DEMO_CLIENT_ID);
  });

  it('loads the production example once its secrets exist', async () => {
    const env = productionEnv({
      WECHAT_WEBSITE_SECRET: 'w',
      PARTNER_PORTAL_CLIENT_SECRET: 'p',
      EXAMPLE_API_CLIENT_SECRET: 'a',
      // No OIDC_COOKIE_KEY_PREVIOUS: a first deployment has no previous key (the entry is commented out).
      OIDC_COOKIE_KEY: 'k1-0123456789abcdefghijklmnopqrstuvwx',
    });
    const problems = await problemsOf(
      loadConfig({ env, file: join(packageRoot(), 'config', 'example.production.yaml') }),
    );
    // Only the files under /run/secrets, which a test cannot create, are missing.
    expect(problems).toEqual([
      'wechat.apps[1].secret: file /run/secrets/wechat_official_account_secret does not exist',
      'oidc.jwks: file /run/secrets/oidc_jwks.json does not exist',
    ]);
  });
});

describe('loadConfig client metadata, as oidc-provider judges it', () => {
  const client = (client_id: string, extra: Record<string, unknown> = {}) => ({
    client_id,
    client_secret: 'rp-secret-0123456789abcdefghijklmnopqrstuvwxyz',
    redirect_uris: ['https://rp.example/cb'],
    ...extra,
  });
  const MINI_PROGRAM_APPID = 'wx4f4bc4dec97d474b';

  // Regression: oidc-provider checks a static client only at its first use, so these were accepted
  // by check-config and the start, and the first person to log in read "登录请求有误：redirect_uris
  // must not contain fragments" while the log named neither the client nor the reason.
  it('refuses every client oidc-provider would refuse at first use, naming the client and the field, with the other problems', async () => {
    const file = await writeConfig({
      wechat: {
        apps: [
          { kind: 'website', appid: 'wx1', secret: { value: 'w' } },
          { kind: 'mini_program', appid: MINI_PROGRAM_APPID, secret: { value: 'm' } },
        ],
      },
      // One RSA key: RS256 is the only algorithm ID tokens can be signed with.
      oidc: { jwks: { value: { keys: [rsaJwk] } } },
      clients: [
        client('fragment', { redirect_uris: ['https://rp.example/cb#frag'] }),
        client('implicit', { grant_types: ['implicit'] }),
        client('hmac', { id_token_signed_response_alg: 'HS256' }),
        client('ec', { id_token_signed_response_alg: 'ES256' }),
        client('no-keys', { client_secret: undefined, token_endpoint_auth_method: 'private_key_jwt' }),
        client('admin', { scope: 'openid admin' }),
        client('typo', { redirect_uri: 'https://rp.example/cb' }),
        client('fine', { scope: 'openid profile', id_token_signed_response_alg: 'RS256' }),
        {
          client_id: 'mini',
          token_endpoint_auth_method: 'none',
          grant_types: ['urn:ietf:params:oauth:grant-type:token-exchange', 'refresh_token'],
          scope: 'openid profile phone offline_access wechat',
          wechat_mini_program_appid: MINI_PROGRAM_APPID,
        },
      ],
    });
    const problems = await problemsOf(loadConfig({ env: {}, file }));
    expect(problems).toEqual([
      'wechat.apps[0].appid: must be "wx" followed by 16 lowercase hex digits',
      'clients[6].redirect_uri: unknown client metadata (not a standard registration name): did you mean redirect_uris?',
      'clients[0].redirect_uris: oidc-provider refuses client "fragment": redirect_uris must not contain fragments',
      `clients[1].grant_types: oidc-provider refuses client "implicit": grant_types can only contain 'authorization_code', 'refresh_token', or 'urn:ietf:params:oauth:grant-type:token-exchange'`,
      `clients[2].id_token_signed_response_alg: oidc-provider refuses client "hmac": id_token_signed_response_alg must be 'RS256'`,
      `clients[3].id_token_signed_response_alg: oidc-provider refuses client "ec": id_token_signed_response_alg must be 'RS256'`,
      'clients[4].jwks: oidc-provider refuses client "no-keys": jwks or jwks_uri is mandatory for this client',
      'clients[5].scope: oidc-provider refuses client "admin": scope must only contain Authorization Server supported scope values',
    ]);
  });

  it('checks a development configuration against the keys the server generates, or those it generated before', async () => {
    const dataDir = await mkdtemp(join(dir, 'data-'));
    const clients = [client('ec', { id_token_signed_response_alg: 'ES256' })];
    const file = await writeConfig({ dataDir, clients });
    // None generated yet: the server's first start makes an RSA, an EC and an Ed25519 key.
    expect((await loadConfig({ env: {}, file })).clients[0]?.client_id).toBe('ec');
    await expect(stat(join(dataDir, 'jwks.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    // An earlier start generated an RSA key only: ES256 cannot be signed.
    await writeFile(join(dataDir, 'jwks.json'), JSON.stringify({ keys: [rsaJwk] }));
    expect(await problemsOf(loadConfig({ env: {}, file }))).toEqual([
      `clients[0].id_token_signed_response_alg: oidc-provider refuses client "ec": id_token_signed_response_alg must be 'RS256'`,
    ]);
  });

  it('checks a client whose secret is missing for everything else, and reports the secret', async () => {
    const file = await writeConfig({
      clients: [client('web', { client_secret: { env: 'WEB_SECRET' }, scope: 'openid admin' })],
    });
    expect(await problemsOf(loadConfig({ env: {}, file }))).toEqual([
      'clients[0].client_secret: environment variable WEB_SECRET is not set',
      'clients[0].scope: oidc-provider refuses client "web": scope must only contain Authorization Server supported scope values',
    ]);
  });

  it("accepts the shipped configurations' clients: the development mini program, and the production example's", async () => {
    const defaults = await loadConfig({ env: {}, file: join(packageRoot(), 'config', 'default.yaml') });
    expect(defaults.clients.map((each) => each.client_id)).toEqual(['my-mini-program']);
    const example = await readFile(join(packageRoot(), 'config', 'example.production.yaml'), 'utf8');
    const file = await writeConfig(
      example
        .replace('{ file: /run/secrets/wechat_official_account_secret }', '{ env: OA_SECRET }')
        .replace('{ file: /run/secrets/oidc_jwks.json }', '{ env: JWKS }'),
    );
    const env = productionEnv({
      OA_SECRET: 'o',
      WECHAT_WEBSITE_SECRET: 'w',
      PARTNER_PORTAL_CLIENT_SECRET: 'p',
      EXAMPLE_API_CLIENT_SECRET: 'a',
      OIDC_COOKIE_KEY: 'k1-0123456789abcdefghijklmnopqrstuvwx',
    });
    const config = await loadConfig({ env, file });
    expect(config.clients.map((each) => each.client_id)).toEqual([
      'partner-portal',
      'example-web',
      'example-api',
    ]);
  });
});

describe('loadConfig production policy', () => {
  it('refuses literal secrets, the demo, the sandbox and generated keys', async () => {
    const file = await writeConfig({
      wechat: { apps: [{ kind: 'website', appid: APPID_A, secret: { value: 'literal-app-secret' } }] },
      clients: [
        { client_id: 'rp', client_secret: 'literal-client-secret', redirect_uris: ['https://rp.example/cb'] },
      ],
      sandbox: { enabled: true },
      demo: { enabled: true },
    });
    const error = await loadConfig({ env: { NODE_ENV: 'production' }, file }).catch(
      (thrown: unknown) => thrown,
    );
    expect((error as ConfigError).problems).toEqual([
      'wechat.apps[0].secret: literal secrets are refused in production; use { env: NAME } or { file: PATH }',
      'clients[0].client_secret: literal secrets are refused in production; use { env: NAME } or { file: PATH }',
      'sandbox.enabled: the WeChat emulator is refused in production unless sandbox.allowInProduction is true',
      'demo.enabled: the demo relying party is refused in production',
      'oidc.jwks: is required in production (generated keys are for development)',
      'oidc.cookieKeys: is required in production (generated keys are for development)',
      'issuer: must be an https:// URL in production: browsers send cookies, WeChat codes and tokens to it and relying parties verify it exactly (set issuer or ISSUER to the public https URL)',
    ]);
    expect((error as Error).message).not.toMatch(/literal-app-secret|literal-client-secret/);
  });

  it('runs the sandbox in production when allowInProduction is set, with a warning', async () => {
    const warnings: string[] = [];
    const file = await writeConfig({
      ...productionFile,
      sandbox: { enabled: true, allowInProduction: true },
    });
    const config = await loadConfig({
      env: productionEnv(),
      file,
      onWarning: (message) => warnings.push(message),
    });
    expect(config.sandbox.enabled).toBe(true);
    expect(warnings).toEqual(['sandbox.enabled: WeChat logins go to the built-in emulator, in production']);
  });

  it('refuses plain-http redirect, logout and event URIs in production, except on a loopback address', async () => {
    const file = await writeConfig({
      ...productionFile,
      clients: [
        {
          client_id: 'web',
          client_secret: { env: 'RP_SECRET' },
          redirect_uris: ['https://rp.example/cb', 'http://rp.example/cb', 'http://127.0.0.1:8080/cb'],
          post_logout_redirect_uris: ['http://rp.example/bye', 'http://localhost/bye'],
          backchannel_logout_uri: 'http://rp.example/logout',
          account_events_uri: 'http://169.254.169.254/latest/meta-data',
        },
        {
          client_id: 'sidecar',
          client_secret: { env: 'RP_SECRET' },
          redirect_uris: ['https://sidecar.example/cb'],
          backchannel_logout_uri: 'http://127.0.0.1:9000/logout',
          account_events_uri: 'https://sidecar.example/events',
        },
      ],
    });
    const https = 'must be https in production (plain http only for a loopback address, as native apps use)';
    expect(await problemsOf(loadConfig({ env: productionEnv({ RP_SECRET: 'rp-secret' }), file }))).toEqual([
      `clients[0].redirect_uris[1]: ${https}`,
      `clients[0].post_logout_redirect_uris[0]: ${https}`,
      `clients[0].backchannel_logout_uri: ${https}`,
      `clients[0].account_events_uri: ${https}`,
    ]);
  });

  it('warns in production when the WeChat API is reached over plain http, by file or by env', async () => {
    const warnings: string[] = [];
    const file = await writeConfig({
      ...productionFile,
      wechat: { ...productionFile.wechat, apiBaseUrl: 'http://egress.internal:8080' },
    });
    await loadConfig({ env: productionEnv(), file, onWarning: (message) => warnings.push(message) });
    await loadConfig({
      env: productionEnv({ WECHAT_API_BASE_URL: 'http://egress.internal:8080' }),
      file: await writeConfig(productionFile),
      onWarning: (message) => warnings.push(message),
    });
    expect(warnings).toEqual([
      'wechat.apiBaseUrl: is not https: AppSecrets, login codes, tokens and session keys cross that hop unencrypted',
      'wechat.apiBaseUrl: is not https: AppSecrets, login codes, tokens and session keys cross that hop unencrypted',
    ]);
  });

  it('warns once per development-only setting, and not at all for a production configuration', async () => {
    const devWarnings: string[] = [];
    await loadConfig({ env: {}, onWarning: (message) => devWarnings.push(message) });
    expect(devWarnings).toEqual([
      'wechat.apps[0].secret: literal secret in the config file (development only; production refuses it)',
      'wechat.apps[1].secret: literal secret in the config file (development only; production refuses it)',
      'wechat.apps[2].secret: literal secret in the config file (development only; production refuses it)',
      'sandbox.enabled: WeChat logins go to the built-in emulator (development only)',
      'demo.enabled: the demo relying party is registered (development only)',
      'oidc.jwks: not set: keys are generated into dataDir (development only)',
      'oidc.cookieKeys: not set: keys are generated into dataDir (development only)',
    ]);
    const prodWarnings: string[] = [];
    const file = await writeConfig(productionFile);
    await loadConfig({ env: productionEnv(), file, onWarning: (message) => prodWarnings.push(message) });
    expect(prodWarnings).toEqual([]);
  });

  it("says when the environment replaces the file's issuer or port with another value", async () => {
    const file = await writeConfig(productionFile);
    const warnings: string[] = [];
    const config = await loadConfig({
      env: productionEnv({ ISSUER: 'https://login.example.net', PORT: '3000', MANAGEMENT_PORT: '9100' }),
      file,
      onWarning: (message) => warnings.push(message),
    });
    expect(config.issuer).toBe('https://login.example.net');
    expect(warnings).toEqual([
      'issuer: "https://id.example.com" in the file is overridden by ISSUER: "https://login.example.net"',
      'management.port: 9464 in the file is overridden by MANAGEMENT_PORT: 9100',
    ]);
    // The same value, or a setting the file leaves out (port here), is nothing to say.
    const same: string[] = [];
    await loadConfig({
      env: productionEnv({ ISSUER: 'https://id.example.com' }),
      file,
      onWarning: (message) => same.push(message),
    });
    expect(same).toEqual([]);
  });

  it('warns in production when no database is named: the embedded store serves one instance only', async () => {
    const { storage: _, ...embedded } = productionFile;
    const warnings: string[] = [];
    await loadConfig({
      env: productionEnv({ DATABASE_URL: '' }),
      file: await writeConfig(embedded),
      onWarning: (message) => warnings.push(message),
    });
    expect(warnings).toEqual([
      expect.stringMatching(
        /^storage\.databaseUrl: not set \(nor DATABASE_URL\): the embedded store, for one instance only, in \//,
      ),
    ]);
  });

  it('warns of a production configuration with no WeChat app, and of a public client given a secret', async () => {
    const { wechat: _, ...noApps } = productionFile;
    const warnings: string[] = [];
    await loadConfig({
      env: productionEnv({ SPA_SECRET: 'spa-secret-0123456789abcdefghijklmnopqrstuvwxyz' }),
      file: await writeConfig({
        ...noApps,
        clients: [
          {
            client_id: 'spa',
            token_endpoint_auth_method: 'none',
            client_secret: { env: 'SPA_SECRET' },
            redirect_uris: ['https://spa.example.com/cb'],
          },
        ],
      }),
      onWarning: (message) => warnings.push(message),
    });
    expect(warnings).toEqual([
      'wechat.apps: none configured: nobody can log in (each needs its kind, appid and AppSecret)',
      'clients[0].client_secret: a public client (token_endpoint_auth_method: none) is never asked for it: remove it, or make the client confidential',
    ]);
  });

  it('warns of a second website app: logins start with the first only', async () => {
    const file = await writeConfig({
      ...productionFile,
      wechat: {
        apps: [
          { kind: 'website', appid: APPID_A, secret: { env: 'APP_SECRET' } },
          { kind: 'website', appid: 'wx00000000000000bb', secret: { env: 'APP_SECRET' } },
        ],
      },
    });
    const warnings: string[] = [];
    await loadConfig({ env: productionEnv(), file, onWarning: (message) => warnings.push(message) });
    expect(warnings).toEqual([
      'wechat.apps[1]: another website app: logins start with the first (wechat.apps[0]) only, and this one only finishes logins already under way with it',
    ]);
  });

  it('warns in production when /metrics is left on the public port (no management port)', async () => {
    const { management: _, ...publicMetrics } = productionFile;
    const file = await writeConfig(publicMetrics);
    const warnings: string[] = [];
    await loadConfig({ env: productionEnv(), file, onWarning: (message) => warnings.push(message) });
    expect(warnings).toEqual([
      'management.port: not set: /metrics is served on the public port to anyone who asks; give it a port ' +
        'of its own (management.port or MANAGEMENT_PORT), or keep /metrics from the internet at the proxy',
    ]);
    // MANAGEMENT_PORT moves it too.
    const moved: string[] = [];
    await loadConfig({
      env: productionEnv({ MANAGEMENT_PORT: '9100' }),
      file,
      onWarning: (message) => moved.push(message),
    });
    expect(moved).toEqual([]);
  });
});

const SECRETS = {
  app: 'app-secret-4f1d',
  client: 'client-secret-9a2c',
  cookie: 'cookie-key-77e0-0123456789abcdefghijklmn',
  dbPassword: 'db-pass-31b5',
  redisPassword: 'redis-pass-c08a',
};

async function configWithEverySecret() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = privateJwk();
  const file = await writeConfig({
    storage: {
      databaseUrl: `postgres://wob:${SECRETS.dbPassword}@db.internal:5432/wob`,
      redisUrl: `redis://:${SECRETS.redisPassword}@cache.internal:6379/0`,
    },
    wechat: { apps: [{ kind: 'website', appid: APPID_A, secret: { env: 'APP' } }] },
    oidc: { jwks: { env: 'JWKS' }, cookieKeys: [{ env: 'COOKIE' }] },
    clients: [
      { client_id: 'rp', client_secret: { env: 'CLIENT' }, redirect_uris: ['https://rp.example/cb'] },
    ],
  });
  const env = {
    APP: SECRETS.app,
    CLIENT: SECRETS.client,
    COOKIE: SECRETS.cookie,
    JWKS: JSON.stringify({ keys: [rsa, ec] }),
  };
  const privateMembers = [rsa, ec].flatMap((jwk) =>
    ['d', 'p', 'q', 'dp', 'dq', 'qi'].map((name) => (jwk as Record<string, unknown>)[name]).filter(Boolean),
  ) as string[];
  return { file, env, secretValues: [...Object.values(SECRETS), ...privateMembers] };
}

describe('redactConfig', () => {
  it('redacts a password in the WeChat base URLs of a configuration built in code', async () => {
    const config = await loadConfig({ env: {}, file: await writeConfig({}) });
    const withCredentials = {
      ...config,
      wechat: { ...config.wechat, apiBaseUrl: 'https://u:code-built-secret@proxy.example/wx' },
    };
    const printed = JSON.stringify(redactConfig(withCredentials));
    expect(printed).not.toContain('code-built-secret');
    expect(printed).toContain('https://u:[redacted]@proxy.example/wx');
  });

  it('removes every secret from the printable copy and keeps the rest', async () => {
    const { file, env, secretValues } = await configWithEverySecret();
    const config = await loadConfig({ env, file });
    const printed = JSON.stringify(redactConfig(config));
    for (const value of secretValues) expect(printed).not.toContain(value);
    expect(secretValues.length).toBeGreaterThan(10);
    expect(printed).toContain(APPID_A);
    expect(printed).toContain('postgres://wob:[redacted]@db.internal:5432/wob');
    expect(printed).toContain('redis://:[redacted]@cache.internal:6379/0');
    expect(printed).toContain('"client_secret":"[redacted]"');
    // The configuration itself still holds the secrets for the server to use.
    expect(config.clients[0]?.client_secret).toBe(SECRETS.client);
  });

  it.each([
    ['postgres://user:pw@host:5432/db', 'postgres://user:[redacted]@host:5432/db'],
    ['postgres://user@host/db', 'postgres://user@host/db'],
    [
      'postgres://host/db?user=u&password=pw&ssl=true',
      'postgres://host/db?user=u&password=[redacted]&ssl=true',
    ],
    ['rediss://:p%40ss@host:6380', 'rediss://:[redacted]@host:6380'],
    ['redis://host:6379/0', 'redis://host:6379/0'],
    ['redis+cluster://:pw@a:7000,b:7001', 'redis+cluster://:[redacted]@a:7000,b:7001'],
    [
      'redis+sentinel://s1:26379,s2/mymaster?sentinelPassword=spw',
      'redis+sentinel://s1:26379,s2/mymaster?sentinelPassword=[redacted]',
    ],
  ])('redacts the password of %s', (url, expected) => {
    expect(redactUrlPassword(url)).toBe(expected);
  });
});

describe('check-config', () => {
  const run = promisify(execFile);
  const script = join(packageRoot(), 'src', 'cli', 'check-config.ts');

  async function checkConfig(env: NodeJS.ProcessEnv) {
    const baseEnv = { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1' };
    return run(process.execPath, [script], { env: { ...baseEnv, ...env } }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ ...error }),
    );
  }

  it('prints the effective configuration as YAML without secrets and exits 0', async () => {
    const { file, env, secretValues } = await configWithEverySecret();
    const result = await checkConfig({ ...env, CONFIG_FILE: file });
    expect(result.code).toBe(0);
    for (const value of secretValues) expect(result.stdout + result.stderr).not.toContain(value);
    const printed = parseYaml(result.stdout);
    expect(printed.wechat.apps[0]).toEqual({
      kind: 'website',
      appid: APPID_A,
      name: APPID_A,
      secret: '[redacted]',
    });
    expect(printed.oidc.cookieKeys).toEqual(['[redacted]']);
    expect(printed.clients[0].client_secret).toBe('[redacted]');
  });

  it('prints the clients oidc-provider refuses with the other problems, naming client and field, and exits 1', async () => {
    const file = await writeConfig({
      wechat: { apiBaseUrl: 'https://u:cli-proxy-secret@proxy.example/wx' },
      clients: [
        {
          client_id: 'web',
          client_secret: 'web-secret-0123456789abcdefghijklmnopqrstuvwxyz',
          redirect_uris: ['https://rp.example/cb#frag'],
        },
        {
          client_id: 'api',
          client_secret: 'api-secret-0123456789abcdefghijklmnopqrstuvwxyz',
          grant_types: [],
          response_types: [],
          scope: 'openid admin',
        },
      ],
    });
    const result = await checkConfig({ CONFIG_FILE: file });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`Invalid configuration (${file}), 3 problems:
  wechat.apiBaseUrl: must not contain credentials (user:password@)`);
    expect(result.stderr).toContain(
      '\n  clients[0].redirect_uris: oidc-provider refuses client "web": redirect_uris must not contain fragments\n',
    );
    expect(result.stderr).toContain(
      '\n  clients[1].scope: oidc-provider refuses client "api": scope must only contain Authorization Server supported scope values\n',
    );
    expect(result.stderr).not.toContain('cli-proxy-secret');
  });

  it('prints every problem and exits 1 for a bad file', async () => {
    const file = await writeConfig({
      issuer: 'https://id.example.com/',
      wechat: { apps: [{ kind: 'website', appid: 'wx1', secret: { value: 'cli-literal-secret' } }] },
    });
    const result = await checkConfig({ CONFIG_FILE: file, NODE_ENV: 'production' });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('issuer: must not end with "/"');
    expect(result.stderr).toContain('wechat.apps[0].appid: must be "wx" followed by 16 lowercase hex digits');
    expect(result.stderr).toContain('wechat.apps[0].secret: literal secrets are refused in production');
    expect(result.stderr).not.toContain('cli-literal-secret');
  });
});
