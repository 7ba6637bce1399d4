import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.ts';
import { loadProviderKeys } from '../../src/oidc/keys.ts';
import { openStores } from '../../src/storage/open-stores.ts';
import { privateDirectory } from '../../src/storage/private-directory.ts';
import { baseConfig, WEBSITE_APP } from '../helpers/bridge.ts';

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

/** The provider's keys with none configured (development): generated into, or read from, `dataDir`. */
function generatedKeysIn(dataDir: string) {
  const config = baseConfig({
    dataDir,
    databaseUrl: undefined,
    redisUrl: undefined,
    redisKeyPrefix: 'unused:',
    sandboxUrl: 'http://127.0.0.1:9',
    apps: [WEBSITE_APP],
  });
  return loadProviderKeys(
    { ...config, oidc: { ...config.oidc, jwks: undefined, cookieKeys: undefined } },
    createLogger({ level: 'silent' }),
  );
}

function recordingLogger() {
  const lines: string[] = [];
  return {
    lines,
    info: (o: object, msg: string) => void lines.push(JSON.stringify({ ...o, msg })),
    warn: (o: object, msg: string) => void lines.push(JSON.stringify({ ...o, msg })),
  };
}

// The data directory holds generated keys and, embedded, live tokens and accounts, in files
// SQLite creates readable by everyone: the directory is what keeps other users out.
describe('the data directory is the server user’s alone', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'wob-private-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is created with mode 0700, missing parents too', async () => {
    const dir = join(root, 'a', 'b', 'data');
    await privateDirectory(dir);
    expect(await modeOf(dir)).toBe(0o700);
    expect(await modeOf(join(root, 'a'))).toBe(0o700);
  });

  it('loses the group and other permissions it was made with, and says so', async () => {
    const dir = join(root, 'shared');
    await mkdir(dir);
    await chmod(dir, 0o755);
    const logger = recordingLogger();
    await privateDirectory(dir, logger);
    expect(await modeOf(dir)).toBe(0o700);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toContain('"was":"755"');
    await privateDirectory(dir, logger);
    expect(logger.lines).toHaveLength(1);
  });

  it('holds the embedded stores: the files inside are out of other users’ reach', async () => {
    const dataDir = join(root, 'embedded');
    await mkdir(dataDir);
    await chmod(dataDir, 0o775);
    const stores = await openStores({ redisKeyPrefix: 'unused:', dataDir, logger: recordingLogger() });
    await stores.close();
    expect(await modeOf(dataDir)).toBe(0o700);
    expect((await stat(join(dataDir, 'artifacts.sqlite'))).isFile()).toBe(true);
    expect((await stat(join(dataDir, 'accounts.sqlite'))).isFile()).toBe(true);
  });

  it('holds the keys generated into it (development), each file 0600', async () => {
    const dataDir = join(root, 'keys');
    await mkdir(dataDir);
    await chmod(dataDir, 0o755);
    const keys = await generatedKeysIn(dataDir);
    expect(keys.jwks.keys.length).toBeGreaterThan(0);
    expect(await modeOf(dataDir)).toBe(0o700);
    expect(await modeOf(join(dataDir, 'jwks.json'))).toBe(0o600);
    expect(await modeOf(join(dataDir, 'cookie-keys.json'))).toBe(0o600);
  });

  it('names a damaged key file without quoting it', async () => {
    const dataDir = join(root, 'damaged');
    await mkdir(dataDir, { mode: 0o700 });
    await writeFile(join(dataDir, 'cookie-keys.json'), '["KEY-MATERIAL-1234567890", ]', { mode: 0o600 });
    const loading = generatedKeysIn(dataDir);
    await expect(loading).rejects.toThrow(/cookie-keys\.json is not valid JSON: restore it from a backup/);
    await expect(loading).rejects.not.toThrow(/KEY-MATERIAL/);
  });
});
