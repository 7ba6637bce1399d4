import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTarget } from '../../src/cli/delete-account-command.ts';
import { unsupportedNode } from '../../src/cli/entry.ts';
import { causes } from '../../src/observability/causes.ts';
import { PACKAGE_ROOT } from '../../src/package-root.ts';

const run = promisify(execFile);

/** The command as an operator runs it from a checkout (this Node, the source file), its exit code and output. */
async function command(script: string, args: string[], env: NodeJS.ProcessEnv) {
  try {
    const { stdout, stderr } = await run(process.execPath, [join(PACKAGE_ROOT, 'src/cli', script), ...args], {
      env: { PATH: process.env.PATH, ...env },
      cwd: PACKAGE_ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('operator commands', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'operator-commands-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuse an older Node, saying which to use, instead of doing nothing and exiting 0', () => {
    expect(unsupportedNode('v20.20.2')).toContain('needs Node.js 24 or later, and this is v20.20.2');
    expect(unsupportedNode('v20.20.2')).toContain('node_modules/.bin/node');
    expect(unsupportedNode('v24.0.0')).toBeUndefined();
    expect(unsupportedNode('v26.1.0')).toBeUndefined();
  });

  it('check-config runs as a command: a missing file is an error, exit 1', async () => {
    const missing = await command('check-config.ts', [join(dir, 'nope.yaml')], {});
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.yaml');
  });

  it('delete-account with no embedded store at dataDir says so (exit 1) and creates none', async () => {
    const config = join(dir, 'config.yaml');
    const dataDir = join(dir, 'data');
    await writeFile(config, `dataDir: ${JSON.stringify(dataDir)}\n`);
    const answer = await command('delete-account.ts', ['--unionid', 'o-someone'], { CONFIG_FILE: config });
    expect(answer.code).toBe(1);
    expect(answer.stderr).toContain(`${join(dataDir, 'accounts.sqlite')} does not exist`);
    expect(answer.stderr).not.toContain('no account matches');
    expect(await readdir(dir)).toEqual(['config.yaml']);
  });

  it('delete-account with a store it cannot reach fails in one line naming the cause, no stack, no password', async () => {
    const config = join(dir, 'config.yaml');
    await writeFile(config, 'dataDir: ./data\n');
    const answer = await command('delete-account.ts', ['--unionid', 'o-someone'], {
      CONFIG_FILE: config,
      // Nothing listens on port 1.
      DATABASE_URL: 'postgres://postgres:secret-password-93@127.0.0.1:1/nowhere',
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(answer.code).toBe(1);
    const lines = answer.stderr.split('\n').filter((line) => line.startsWith('delete-account failed: '));
    expect(lines).toHaveLength(1);
    expect(answer.stderr).not.toMatch(/\n\s+at /);
    expect(answer.stderr + answer.stdout).not.toContain('secret-password-93');
  });

  it('say their usage for --help (a flag is never taken for a file name), and take --unionid=X', async () => {
    for (const script of ['check-config.ts', 'copy-accounts-to-postgres.ts']) {
      const help = await command(script, ['--help'], {});
      expect(help.code, script).toBe(0);
      expect(help.stderr, script).toMatch(/^usage: /);
      expect(help.stdout, script).toBe('');
      expect((await command(script, ['--verbose'], {})).code, script).toBe(64);
    }
    expect(parseTarget(['--unionid=o-someone'])).toEqual({ unionid: 'o-someone' });
    expect(parseTarget(['--openid', 'o-other'])).toEqual({ openid: 'o-other' });
    expect(parseTarget(['--unionid='])).toBeUndefined();
  });

  it('names each cause of an error once', () => {
    const inner = new Error('connect ECONNREFUSED 127.0.0.1:1');
    const outer = new Error('database migrations failed: connect ECONNREFUSED 127.0.0.1:1', { cause: inner });
    expect(causes(new Error('cannot connect to Redis', { cause: outer }))).toBe(
      'cannot connect to Redis: database migrations failed: connect ECONNREFUSED 127.0.0.1:1',
    );
    expect(causes('plain')).toBe('plain');
  });
});
