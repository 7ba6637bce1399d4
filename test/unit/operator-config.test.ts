import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { checkConfig, SANDBOX_BASE_URL } from '../../src/cli/check-config-command.ts';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

/**
 * What an operator reads about their configuration: the findings of an outside operator's first
 * deployment (store URLs whose password was pasted in unencoded, file paths, misspelt options).
 */

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wob-operator-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;
async function writeConfig(content: object): Promise<string> {
  files += 1;
  const file = join(dir, `config-${files}.json`);
  await writeFile(file, JSON.stringify(content));
  return file;
}

/** The problems and warnings of loading `file`, as check-config and the start print them. */
async function load(file: string, env: NodeJS.ProcessEnv) {
  const warnings: string[] = [];
  const error = await loadConfig({ env, file, onWarning: (line) => warnings.push(line) }).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (error !== undefined && !(error instanceof ConfigError)) throw error;
  return { problems: error?.problems ?? [], message: error?.message ?? '', warnings };
}

/** A file that passes the production checks, without a database: the embedded store. */
const productionFile = {
  issuer: 'https://id.example.com',
  trustProxy: true,
  behindTlsProxy: true,
  oidc: { jwks: { env: 'JWKS' }, cookieKeys: [{ env: 'COOKIE_KEY' }] },
};

const productionEnv = {
  NODE_ENV: 'production',
  JWKS: JSON.stringify({
    keys: [
      {
        ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
        kid: 'k',
      },
    ],
  }),
  COOKIE_KEY: 'cookie-key-from-env-0123456789abcdefghij',
};

const ENCODE =
  'does not parse as a URL: a / ? # or @ in its user name or password must be percent-encoded ' +
  '(%2F %3F %23 %40), or use a password without them (such as `openssl rand -hex 32`)';

describe('a store URL whose password holds a reserved character, unencoded', () => {
  // compose builds DATABASE_URL from POSTGRES_PASSWORD as it is; openssl rand -base64 gives / often.
  it.each([
    ['/', 'postgres://wob:Ab/Cd+ef=SecretPw9@127.0.0.1:5432/wob'],
    ['#', 'postgres://wob:Ab#Cd+ef=SecretPw9@db:5432/wob'],
    ['?', 'postgresql://wob:Ab?Cd+ef=SecretPw9@db/wob'],
  ])('DATABASE_URL with %s: says to percent-encode, never "not set", never the password', async (_, url) => {
    const { problems, message, warnings } = await load(await writeConfig(productionFile), {
      ...productionEnv,
      DATABASE_URL: url,
    });
    expect(problems).toEqual([`DATABASE_URL: ${ENCODE}`]);
    expect(warnings.filter((line) => line.startsWith('storage.databaseUrl'))).toEqual([]);
    expect(message + warnings.join('\n')).not.toContain('SecretPw9');
  });

  it('storage.databaseUrl in the file: the same', async () => {
    const file = await writeConfig({ storage: { databaseUrl: 'postgres://wob:a/b@db/wob' } });
    expect((await load(file, {})).problems).toEqual([`storage.databaseUrl: ${ENCODE}`]);
  });

  it('still warns that DATABASE_URL is not set when it is not, or is empty', async () => {
    for (const env of [productionEnv, { ...productionEnv, DATABASE_URL: ' ' }]) {
      const { problems, warnings } = await load(await writeConfig(productionFile), env);
      expect(problems).toEqual([]);
      expect(warnings).toContainEqual(
        expect.stringMatching(/^storage\.databaseUrl: not set \(nor DATABASE_URL\)/),
      );
    }
  });

  it('a DATABASE_URL that does not parse for another reason is said so, without the advice', async () => {
    const { problems } = await load(await writeConfig({}), { DATABASE_URL: 'postgres://db:port/wob' });
    expect(problems).toEqual(['DATABASE_URL: does not parse as a URL']);
  });

  it.each([
    'redis://:Ab/Cd+ef=SecretPw9@cache:6379',
    'redis://:Ab#Cd+ef=SecretPw9@cache:6379/2',
    'rediss://user:Ab?Cd=SecretPw9@cache',
    'redis+cluster://:Ab/Cd=SecretPw9@n1:7000,n2:7001',
    'redis+sentinel://:Ab/Cd=SecretPw9@s1:26379,s2/mymaster',
  ])('REDIS_URL %s: says to percent-encode, never the password', async (url) => {
    const { problems, message } = await load(await writeConfig({}), { REDIS_URL: url });
    expect(problems).toEqual([`REDIS_URL: ${ENCODE}`]);
    expect(message).not.toContain('SecretPw9');
  });

  it("a Redis URL refused for another reason keeps its own message, an @ in a query's value included", async () => {
    const { problems } = await load(await writeConfig({}), {
      REDIS_URL: 'redis+sentinel://s1/mymaster?sentinelPassword=a/b@c&sentinelPasword=x',
    });
    expect(problems).toEqual([
      'REDIS_URL: unknown URL parameter "sentinelPasword" (this form takes sentinelUsername, sentinelPassword; credentials go before the @)',
    ]);
  });

  it('a password with the characters encoded is taken as it is', async () => {
    const config = await loadConfig({
      env: {
        DATABASE_URL: 'postgres://wob:Ab%2FCd%23e%3F@db:5432/wob',
        REDIS_URL: 'redis://:Ab%2FCd@cache:6379',
      },
      file: await writeConfig({}),
      onWarning: () => {},
    });
    expect(config.storage).toMatchObject({
      databaseUrl: 'postgres://wob:Ab%2FCd%23e%3F@db:5432/wob',
      redisUrl: 'redis://:Ab%2FCd@cache:6379',
    });
  });
});

describe('a secret file named in a problem', () => {
  // One message gave the path as configured, another the absolute one: the absolute path is the
  // file read (a relative one is taken from the configuration file's folder, not the shell's).
  it('is named by its absolute path, whether missing or not JSON', async () => {
    await mkdir(join(dir, 'secrets'), { recursive: true });
    await writeFile(join(dir, 'secrets', 'bad.json'), '{"keys": [');
    const { problems } = await load(
      await writeConfig({
        oidc: { jwks: { file: 'secrets/bad.json' }, cookieKeys: [{ file: 'secrets/missing' }] },
      }),
      {},
    );
    expect(problems).toEqual([
      `oidc.jwks: file ${join(dir, 'secrets', 'bad.json')} does not hold valid JSON`,
      `oidc.cookieKeys[0]: file ${join(dir, 'secrets', 'missing')} does not exist`,
    ]);
  });
});

describe('an unknown option', () => {
  it('is given the known name it most likely misspells', async () => {
    const { problems } = await load(
      await writeConfig({
        trust_proxy: true,
        BehindTlsProxy: true,
        log: { levle: 'info' },
        wechat: {
          miniProgram: { 'session-key-ttl': 60 },
          apps: [{ kind: 'website', appid: 'wx0123456789abcdef', secret: { fiel: 'x' } }],
        },
        clients: [{ client_id: 'web', client_secret: { value: 'x' }, redirect_uri: 'https://rp.example/cb' }],
        sandbox: { prot: 4100 },
      }),
      {},
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'trust_proxy: unknown option: did you mean trustProxy?',
        'BehindTlsProxy: unknown option: did you mean behindTlsProxy?',
        'log.levle: unknown option: did you mean level?',
        'wechat.miniProgram["session-key-ttl"]: unknown option: did you mean sessionKeyTtl?',
        'wechat.apps[0].secret.fiel: unknown option: did you mean file?',
        'clients[0].redirect_uri: unknown client metadata (not a standard registration name): did you mean redirect_uris?',
        'sandbox.prot: unknown option: did you mean port?',
      ]),
    );
  });

  it('is said unknown alone when no known name is close', async () => {
    const { problems } = await load(await writeConfig({ colour: 'blue', log: { pretty: false } }), {});
    expect([...problems].sort()).toEqual(['colour: unknown option', 'log.pretty: unknown option']);
  });
});

describe('check-config with the sandbox on', () => {
  // Production with the sandbox printed openBaseUrl: https://open.weixin.qq.com as effective, while
  // every WeChat call went to the emulator.
  it('prints the WeChat base URLs as the sandbox, not the ones it replaces', async () => {
    const file = await writeConfig({
      ...productionFile,
      wechat: { openBaseUrl: 'https://open.example.com' },
      sandbox: { enabled: true, allowInProduction: true },
    });
    let stdout = '';
    const code = await checkConfig({
      file,
      env: productionEnv,
      stdout: (text) => (stdout += text),
      stderr: () => {},
    });
    expect(code).toBe(0);
    expect(parseYaml(stdout).wechat).toMatchObject({
      openBaseUrl: SANDBOX_BASE_URL,
      apiBaseUrl: SANDBOX_BASE_URL,
    });
    expect(stdout).not.toMatch(/open\.example\.com|weixin\.qq\.com/);
  });

  it('prints the configured ones with the sandbox off', async () => {
    let stdout = '';
    const file = await writeConfig({
      ...productionFile,
      wechat: { openBaseUrl: 'https://open.example.com' },
    });
    await checkConfig({ file, env: productionEnv, stdout: (text) => (stdout += text), stderr: () => {} });
    expect(parseYaml(stdout).wechat).toMatchObject({
      openBaseUrl: 'https://open.example.com',
      apiBaseUrl: 'https://api.weixin.qq.com',
    });
  });
});
