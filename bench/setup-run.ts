import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StorageSetup } from '../test/helpers/bridge.ts';
import type { SandboxUser } from '../test/helpers/flow.ts';
import type { Cleanup } from './cleanup.ts';
import { type EngineOptions, type EngineUnderTest, profiling, startEngine, tempDir } from './engines.ts';
import { type Counted, callgrindFile, countingInstructions, underCallgrind } from './instructions.ts';
import { type LoadResult, type Operation, runLoad } from './load.ts';
import { coreBusy, readCoreTicks } from './machine.ts';
import type { BenchOptions } from './options.ts';
import type { Pinning } from './processes.ts';
import { type RedisMemory, redisMemory } from './redis-memory.ts';
import { profiledTargets, SCENARIO_LIST, scenarioOf, type Target, World } from './scenarios.ts';
import type { Engine } from './spec.ts';

export interface ScenarioRow extends LoadResult {
  setup: StorageSetup;
  scenario: string;
  engine: Engine;
  /** The bare-engine scenario this one is compared with. */
  comparedTo: string;
  concurrency: number;
  opsPerSecond: number;
  cpuMsPerOp: number;
  /** Of cpuMsPerOp, the kernel's part (system calls and the loopback network they drive). */
  systemMsPerOp: number;
  /** Of cpuMsPerOp, what the main thread spent (JavaScript, and the I/O it does itself). */
  mainThreadMsPerOp: number;
  /** Of mainThreadMsPerOp, the garbage collector's pauses. */
  gcMsPerOp: number;
  /** Redis round trips per operation (postgres+redis only): independent of the machine's speed. */
  redisRoundTripsPerOp: number | undefined;
  /** Operations per second of server CPU time: what one fully used core sustains. */
  perCoreSecond: number;
  /** Server CPU time / wall time: near 1 when the server's core was the bottleneck. */
  serverCoreUtilisation: number;
  /** Everything that ran on the server's core (ours and other processes'), 0..1; Linux only. */
  serverCoreBusy: number | undefined;
}

export interface MemoryRow {
  setup: StorageSetup;
  engine: Engine;
  /** Successful logins, each a fresh browser: one active session each. */
  sessions: number;
  /** Failed logins of the memory phase. */
  errors: number;
  errorSamples: string[];
  rssIdleBytes: number;
  rssBytes: number;
  redis: (RedisMemory & { bytesPerSession: number; lastingBytesPerSession: number }) | undefined;
}

/**
 * What refresh_token rotation leaves in Redis, read after the refresh scenarios: every refresh
 * consumes the token it was given and keeps it until the token would have expired (its reuse then
 * revokes the grant), with an entry in its grant's index. The held grants have each been refreshed
 * thousands of times by then, so nearly every RefreshToken key is such a used one.
 */
export interface RotationRow {
  engine: Engine;
  /** oidc:RefreshToken keys, the few live ones included. */
  refreshTokens: number;
  bytesPerRefreshToken: number;
  /** The grant indexes' bytes over the refresh tokens: what each rotation adds there. */
  indexBytesPerRefreshToken: number;
}

export interface SetupResult {
  setup: StorageSetup;
  rows: ScenarioRow[];
  memory: MemoryRow[];
  /** PostgreSQL + Redis, when a refresh scenario ran. */
  rotation: RotationRow[];
  /** error and warn lines in the bridge's log (messages only). */
  bridgeLog: { errors: number; warnings: number; samples: string[] };
  /** Accounts in the bridge's database before the first scenario (--population and its migrations). */
  accountsAtStart: number | undefined;
}

export interface SetupContext {
  options: BenchOptions;
  pinning: Pinning;
  cleanup: Cleanup;
  sandboxUrl: string;
  users: SandboxUser[];
  keys: EngineOptions['keys'];
  /**
   * Profiling: only this scenario (no memory phase, no bridge-only variants), with each server's
   * measured phase under the CPU profiler, written to `<dir>/<engine>-<setup>.cpuprofile`, or its
   * instructions counted by callgrind (instructions.ts) into `tally`, over `--ops` operations.
   */
  profile?: { dir: string; scenario: string } & (
    | { tool: 'cpu' }
    | { tool: 'instructions'; tally: Map<Engine, Counted> }
  );
}

/**
 * One storage setup: the bridge and the bare engine side by side (both pinned to the server core,
 * only one of them under load at a time), each on its own database / Redis prefix / data dir.
 * First the memory phase on fresh servers, then every scenario, the engines measured in
 * alternating slices so that both see the same machine.
 */
export async function runSetup(setup: StorageSetup, ctx: SetupContext): Promise<SetupResult> {
  const { options } = ctx;
  const engineOptions: EngineOptions = {
    ...ctx,
    connections: options.concurrency,
    logFile: join(await tempDir(ctx.cleanup), 'bridge.log'),
    nodeFlags: options.serverFlags,
    population: options.population,
  };
  const { profile } = ctx;
  if (profile?.tool === 'instructions')
    await underCallgrind(engineOptions, profile.dir, setup, options.cacheSim);
  const bare = await startEngine('bare', setup, engineOptions);
  const bridge = await startEngine('bridge', setup, engineOptions);
  const world = new World({
    bare,
    bridge,
    users: ctx.users,
    sandboxUrl: ctx.sandboxUrl,
    workers: options.concurrency,
  });
  const rows: ScenarioRow[] = [];
  const memory: MemoryRow[] = [];
  const profiled = ctx.profile && scenarioOf(ctx.profile.scenario);
  const wanted = (name: string) =>
    ctx.profile ? profiled?.name === name : !options.only || options.only.includes(name);

  if (wanted('memory')) {
    for (const e of world.engines) memory.push(await memoryPhase(setup, e, world.loginOp(e), options));
  }
  // Servers that skipped the memory phase have served only the untimed first logins when the first
  // scenario starts, and the bridge's cost per call settles only after a few seconds of load (bench/
  // README.md): that scenario warms up longer, so a lone `--only userinfo` means what a full run does.
  let warm = wanted('memory');
  for (const scenario of SCENARIO_LIST) {
    if (!wanted(scenario.name)) continue;
    const all = await scenario.targets(world);
    const targets = ctx.profile ? profiledTargets(all, ctx.profile.scenario) : all;
    const warmupMs = warm ? options.warmupMs : Math.max(options.warmupMs, options.coldWarmupMs);
    rows.push(...(await measure(setup, targets, ctx, warmupMs)));
    warm = true;
  }

  const refreshed = rows.some((row) => row.scenario.startsWith('refresh_token'));
  const rotation = refreshed ? await rotationRows(world.engines) : [];

  for (const e of world.engines) await e.calls.close();
  await Promise.all(world.engines.map((e) => e.server.stop()));
  const bridgeLog = await scanLog(engineOptions.logFile);
  return { setup, rows, memory, rotation, bridgeLog, accountsAtStart: bridge.accountsAtStart };
}

/** Measures the targets in alternating slices (see runLoad), so that they see the same machine. */
async function measure(
  setup: StorageSetup,
  targets: Target[],
  ctx: SetupContext,
  warmupMs: number,
): Promise<ScenarioRow[]> {
  const { options, profile } = ctx;
  const ticks = readCoreTicks();
  const results = await runLoad(
    targets.map(({ e, op }) => ({
      op,
      usage: e.usage,
      redisRoundTrips: e.redisRoundTrips,
      ...(profile?.tool === 'cpu' && profiling(e, profile.dir, setup)),
      ...(profile?.tool === 'instructions' &&
        countingInstructions(e, callgrindFile(profile.dir, e.engine, setup), profile.tally)),
    })),
    {
      concurrency: options.concurrency,
      warmupMs,
      rounds: profile ? 1 : options.rounds,
      // Counted operations are tens of times slower: a fixed number of them, however long it takes.
      ...(profile?.tool === 'instructions'
        ? { durationMs: Number.POSITIVE_INFINITY, maxOps: options.ops }
        : { durationMs: options.durationMs }),
    },
  );
  const busy = coreBusy(ticks, readCoreTicks(), ctx.pinning.serverCore);
  return targets.map(({ scenario, e, comparedTo }, i) => {
    const row = toRow(
      { setup, scenario, engine: e.engine, comparedTo: comparedTo ?? scenario, serverCoreBusy: busy },
      options.concurrency,
      results[i] as LoadResult,
    );
    progress(row);
    return row;
  });
}

async function rotationRows(engines: EngineUnderTest[]): Promise<RotationRow[]> {
  const rows: RotationRow[] = [];
  for (const e of engines) {
    if (!e.redis) continue;
    const { byKind } = await redisMemory(e.redis.url, e.redis.prefix, e.loginScopedSeconds);
    const tokens = byKind['oidc:RefreshToken'];
    if (!tokens?.keys) continue;
    rows.push({
      engine: e.engine,
      refreshTokens: tokens.keys,
      bytesPerRefreshToken: tokens.bytes / tokens.keys,
      indexBytesPerRefreshToken: (byKind['oidc-grant']?.bytes ?? 0) / tokens.keys,
    });
  }
  return rows;
}

/** N logins on a fresh server (each a new browser, so a new session), then Redis bytes and RSS. */
async function memoryPhase(
  setup: StorageSetup,
  e: EngineUnderTest,
  op: Operation,
  options: BenchOptions,
): Promise<MemoryRow> {
  const idle = await e.usage();
  const [result] = (await runLoad([{ op, usage: e.usage }], {
    concurrency: options.concurrency,
    warmupMs: 0,
    // Bounded whatever the machine: a slow one reports fewer sessions rather than running on.
    durationMs: 180_000,
    maxOps: options.sessions,
  })) as [LoadResult];
  const scenario = `login ×${options.sessions} (memory phase)`;
  const row = toRow(
    { setup, scenario, engine: e.engine, comparedTo: '', serverCoreBusy: undefined },
    options.concurrency,
    result,
  );
  progress(row);
  const redis = e.redis ? await redisMemory(e.redis.url, e.redis.prefix, e.loginScopedSeconds) : undefined;
  return {
    setup,
    engine: e.engine,
    sessions: result.ops,
    errors: result.errors,
    errorSamples: result.errorSamples,
    rssIdleBytes: idle.rssBytes,
    rssBytes: result.serverRssBytes,
    redis: redis && {
      ...redis,
      bytesPerSession: redis.bytes / result.ops,
      lastingBytesPerSession: redis.lastingBytes / result.ops,
    },
  };
}

type RowBase = Pick<ScenarioRow, 'setup' | 'scenario' | 'engine' | 'comparedTo' | 'serverCoreBusy'>;

function toRow(base: RowBase, concurrency: number, result: LoadResult): ScenarioRow {
  // Milliseconds over the operations counted (NaN when none were).
  const perOp = (ms: number) => (result.ops ? ms / result.ops : Number.NaN);
  const cpuMsPerOp = perOp(result.serverCpuMs);
  return {
    ...result,
    ...base,
    concurrency,
    opsPerSecond: (result.ops / result.wallMs) * 1000,
    cpuMsPerOp,
    systemMsPerOp: perOp(result.serverSystemCpuMs),
    mainThreadMsPerOp: perOp(result.serverMainThreadCpuMs),
    gcMsPerOp: perOp(result.serverGcPauseMs),
    redisRoundTripsPerOp:
      result.redisRoundTrips === undefined || !result.ops ? undefined : result.redisRoundTrips / result.ops,
    perCoreSecond: 1000 / cpuMsPerOp,
    serverCoreUtilisation: result.serverCpuMs / result.wallMs,
  };
}

function progress(row: ScenarioRow): void {
  const errors = row.errors ? `  ${row.errors} ERRORS: ${row.errorSamples[0]}` : '';
  process.stderr.write(
    `bench: ${row.setup.padEnd(14)} ${row.engine.padEnd(6)} ${row.scenario.padEnd(28)} ` +
      `${row.ops} ops, ${row.cpuMsPerOp.toFixed(2)} cpu ms/op (gc ${row.gcMsPerOp.toFixed(2)}), server core ${(row.serverCoreUtilisation * 100).toFixed(0)} %, ` +
      `p50 ${row.latencyMs.p50.toFixed(1)} ms${errors}\n`,
  );
}

async function scanLog(file: string): Promise<SetupResult['bridgeLog']> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const result = { errors: 0, warnings: 0, samples: [] as string[] };
  for (const line of text.split('\n')) {
    const level = /"level":"(error|fatal|warn)"/.exec(line)?.[1];
    if (!level) continue;
    if (level === 'warn') result.warnings++;
    else result.errors++;
    const entry = JSON.parse(line) as { msg?: string; err?: { message?: string } };
    // The message and the error's own message only (masked like error samples): never whole lines.
    const why = entry.err?.message ? ` (${entry.err.message.replace(/[\w-]{20,}/g, '…').slice(0, 200)})` : '';
    const sample = `${level}: ${entry.msg ?? ''}${why}`;
    if (result.samples.length < 5 && !result.samples.includes(sample)) result.samples.push(sample);
  }
  return result;
}
