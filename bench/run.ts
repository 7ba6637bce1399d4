import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../src/config/types.ts';
import { loadProviderKeys } from '../src/oidc/keys.ts';
import { PACKAGE_ROOT } from '../src/package-root.ts';
import { type StorageSetup, storageAvailable } from '../test/helpers/bridge.ts';
import { createSandboxUser, type SandboxUser } from '../test/helpers/flow.ts';
import { Cleanup } from './cleanup.ts';
import { countInstructions } from './instructions.ts';
import { describeMachine, finishMachine } from './machine.ts';
import { type BenchOptions, parseOptions, USAGE } from './options.ts';
import { choosePinning, type Pinning, pinSelf, startChild, stopAllChildren } from './processes.ts';
import { profileScenario } from './profile.ts';
import { checkTargets, formatReport, type Report, totalErrors } from './report.ts';
import { runSetup, type SetupContext, type SetupResult } from './setup-run.ts';
import { measureSigningLimits } from './signing.ts';

/**
 * `npm run bench`: the bridge beside the bare oidc-provider engine on both storage setups, the
 * signing limit and memory, in one bounded, loopback-only run that starts what it needs and stops
 * it again. Prints a table; the JSON goes to bench/results/.
 */
const DEFAULT_RESULTS_DIR = join(PACKAGE_ROOT, 'bench', 'results');
const SANDBOX_USERS = 200;

async function main(): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const cleanup = new Cleanup();
  const interrupted = (signal: string) => {
    process.stderr.write(`\nbench: ${signal}, stopping everything it started\n`);
    void stopAllChildren()
      .then(() => cleanup.run())
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', () => interrupted('SIGINT'));
  process.once('SIGTERM', () => interrupted('SIGTERM'));

  try {
    return await bench(options, cleanup);
  } finally {
    await stopAllChildren();
    await cleanup.run();
  }
}

async function bench(options: BenchOptions, cleanup: Cleanup): Promise<number> {
  const startedAt = new Date().toISOString();
  const machine = describeMachine();
  const pinning = choosePinning();
  pinSelf(pinning.loadCore);
  const ctx = await prepare(options, pinning, cleanup);
  const resultsDir = options.resultsDir ?? DEFAULT_RESULTS_DIR;

  if (options.profile) {
    const setup = options.setups[0] as StorageSetup;
    await profileScenario(options.profile, setup, ctx, join(resultsDir, 'profiles'));
    return 0;
  }
  if (options.instructions) {
    const setup = options.setups[0] as StorageSetup;
    await countInstructions(options.instructions, setup, ctx, join(resultsDir, 'instructions'));
    return 0;
  }

  const setups: SetupResult[] = [];
  const skipped: Report['skipped'] = [];
  for (const setup of options.setups) {
    if (!(await storageAvailable(setup))) {
      skipped.push({ setup, reason: 'PostgreSQL or Redis unreachable (TEST_DATABASE_URL, TEST_REDIS_URL)' });
      continue;
    }
    setups.push(await runSetup(setup, ctx));
  }
  process.stderr.write('bench: signing limit\n');
  const signing = await measureSigningLimits(ctx.keys.jwks, options.signingMs);

  const report: Report = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: finishMachine(machine),
    pinning,
    options: { ...options },
    setups,
    skipped,
    signing,
    targets: checkTargets(setups),
    totalErrors: totalErrors(setups),
  };
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `bench-${startedAt.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${formatReport(report)}\n\nresults: ${file}\n`);
  return report.totalErrors > 0 || skipped.length > 0 ? 1 : 0;
}

/** What every setup shares: signing and cookie keys, the WeChat sandbox and its people. */
async function prepare(options: BenchOptions, pinning: Pinning, cleanup: Cleanup): Promise<SetupContext> {
  const keyDir = await mkdtemp(join(tmpdir(), 'wob-bench-keys-'));
  cleanup.add('remove the generated keys', () => rm(keyDir, { recursive: true, force: true }));
  // Generated once, the bridge's way, and given to both engines: the same keys sign on both.
  const keySource = { oidc: { jwks: undefined, cookieKeys: undefined }, dataDir: keyDir };
  const keys = await loadProviderKeys(keySource as unknown as Config, { info() {}, warn() {} });

  const sandbox = await startChild({
    name: 'sandbox',
    script: new URL('./sandbox-process.ts', import.meta.url),
    core: pinning.loadCore,
  });
  cleanup.add('stop the sandbox', () => sandbox.stop());
  const sandboxUrl = String(sandbox.ready.url);
  const users: SandboxUser[] = [];
  for (let i = 0; i < SANDBOX_USERS; i++) {
    users.push(await createSandboxUser({ sandboxUrl }, i % 2 ? `微信用户${i} 🐼` : `Bench user ${i}`));
  }
  return {
    options,
    pinning,
    cleanup,
    sandboxUrl,
    users,
    keys: { jwks: keys.jwks, cookieKeys: keys.cookieKeys.map((key) => key.reveal()) },
  };
}

process.exitCode = await main();
