import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.ts';

const MINI_PROGRAM = 'wx4f4bc4dec97d474b';
const WEBSITE = 'wx0123456789abcdef';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

let dir: string;
let count = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wob-mp-config-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(file: object) {
  const path = join(dir, `config-${++count}.json`);
  await writeFile(path, JSON.stringify({ dataDir: dir, ...file }));
  return loadConfig({ file: path, env: {} });
}

async function problems(file: object): Promise<readonly string[]> {
  const error = await load(file).then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return (error as ConfigError).problems;
}

const apps = [
  { kind: 'website', appid: WEBSITE, secret: { value: 'w' } },
  { kind: 'mini_program', appid: MINI_PROGRAM, secret: { value: 'm' } },
];
const miniProgramClient = {
  client_id: 'mp',
  token_endpoint_auth_method: 'none',
  grant_types: [EXCHANGE, 'refresh_token'],
  wechat_mini_program_appid: MINI_PROGRAM,
};

describe('mini program configuration', () => {
  it('binds a public client to a mini program, with no redirect URIs or response types needed', async () => {
    const config = await load({ wechat: { apps }, clients: [miniProgramClient] });
    expect(config.clients[0]).toMatchObject({ wechat_mini_program_appid: MINI_PROGRAM, response_types: [] });
    expect(config.wechat.miniProgram).toEqual({ sessionKeyTtl: 1_209_600, encryptedDataMaxAge: 600 });
  });

  it('takes the session key TTL and the data age from the file', async () => {
    const config = await load({
      wechat: { apps, miniProgram: { sessionKeyTtl: 86400, encryptedDataMaxAge: 120 } },
    });
    expect(config.wechat.miniProgram).toEqual({ sessionKeyTtl: 86400, encryptedDataMaxAge: 120 });
  });

  it('refuses a binding to an app that is not a configured mini program, or without the grant, all at once', async () => {
    const found = await problems({
      wechat: { apps },
      clients: [
        { ...miniProgramClient, client_id: 'a', wechat_mini_program_appid: WEBSITE },
        { ...miniProgramClient, client_id: 'b', grant_types: ['refresh_token'] },
        { client_id: 'c', token_endpoint_auth_method: 'none', grant_types: [EXCHANGE] },
        { ...miniProgramClient, client_id: 'd', wechat_mini_program_appid: 'not-an-appid' },
      ],
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^clients\[0\]\.wechat_mini_program_appid: no mini_program app/),
        expect.stringMatching(
          /^clients\[1\]\.grant_types: must include urn:ietf:params:oauth:grant-type:token-exchange/,
        ),
        expect.stringMatching(/^clients\[2\]\.wechat_mini_program_appid: is required/),
        expect.stringMatching(/^clients\[3\]\.wechat_mini_program_appid: must be "wx"/),
      ]),
    );
  });
});
