import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/package-root.ts';

const run = promisify(execFile);

/** A Node older than 24 on this machine (the system's, beside the project's own), or undefined. */
function olderNode(): string | undefined {
  const candidate = '/usr/bin/node';
  if (!existsSync(candidate)) return undefined;
  const version = execFileSync(candidate, ['--version'], { encoding: 'utf8' }).trim();
  return Number(/^v(\d+)/.exec(version)?.[1]) < 24 ? candidate : undefined;
}

const oldNode = olderNode();

/**
 * Regression: on Node 20, delete-account and copy-accounts-to-postgres crashed with
 * ERR_UNKNOWN_BUILTIN_MODULE (node:sqlite) and a stack, where README promises that every command
 * refuses an older Node, saying which to use: their node:sqlite imports failed to link before the
 * version check ran (an operator's review). Run as README documents them, built
 * (node dist/src/cli/<command>.js), with the older Node.
 */
describe.skipIf(oldNode === undefined)('the operator commands on a Node older than 24', () => {
  let built: string;
  beforeAll(async () => {
    // Inside the package, so that the built modules find its node_modules as dist/ does.
    const cache = join(PACKAGE_ROOT, 'node_modules', '.cache');
    await mkdir(cache, { recursive: true });
    built = await mkdtemp(join(cache, 'old-node-'));
    await run(
      join(PACKAGE_ROOT, 'node_modules', '.bin', 'tsc'),
      ['-p', 'tsconfig.build.json', '--outDir', built],
      {
        cwd: PACKAGE_ROOT,
      },
    );
  }, 120_000);
  afterAll(async () => {
    if (built) await rm(built, { recursive: true, force: true });
  });

  it.each([
    ['check-config', []],
    ['delete-account', ['--unionid', 'o-someone']],
    ['copy-accounts-to-postgres', []],
  ])('%s says it needs Node 24 and which to use, exit 1, no stack', async (name, args) => {
    const answer = await run(oldNode as string, [join(built, 'src', 'cli', `${name}.js`), ...args], {
      cwd: PACKAGE_ROOT,
      env: { PATH: process.env.PATH },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(answer.code).toBe(1);
    expect(answer.stderr).toMatch(
      /^this command needs Node\.js 24 or later, and this is v\d+\.\d+\.\d+: run it with the Node that npm install put in the project \(node_modules\/\.bin\/node\), or through npm run\n$/,
    );
    expect(answer.stdout).toBe('');
  });
});
