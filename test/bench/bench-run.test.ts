import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';
import type { Report } from '../../bench/report.ts';

const run = promisify(execFile);
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

// Timings are the benchmark's business, never a test's: this only keeps `npm run bench` working.
test('npm run bench measures every scenario on the bridge and the bare engine without an error', async () => {
  const results = await mkdtemp(join(tmpdir(), 'wob-bench-test-'));
  dirs.push(results);
  const args = ['bench/run.ts', '--setup', 'embedded', '--results', results, '--duration', '0.2'];
  args.push('--warmup', '0', '--sessions', '4', '--concurrency', '2', '--signing', '0.05');
  await run(process.execPath, args, { timeout: 150_000 });

  const [file] = await readdir(results);
  const report = JSON.parse(await readFile(join(results, file ?? ''), 'utf8')) as Report;
  const measured = report.setups.flatMap((setup) => setup.rows.map((row) => `${row.engine} ${row.scenario}`));
  for (const scenario of [
    'login',
    'userinfo',
    'introspection',
    'refresh_token RS256',
    'refresh_token EdDSA',
  ]) {
    expect(measured).toContain(`bare ${scenario}`);
    expect(measured).toContain(`bridge ${scenario}`);
  }
  expect(measured).toContain('bridge login, consent remembered');
  expect(measured).toContain('bridge login + consent page');
  expect(measured).toContain('bridge mini-program login');
  expect(report.setups[0]?.memory.map((m) => m.sessions)).toEqual([4, 4]);
  expect(report.signing.map((limit) => limit.alg)).toEqual(['RS256', 'ES256', 'EdDSA']);
  expect(report.totalErrors).toBe(0);
}, 180_000);
