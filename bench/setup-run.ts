import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import type { StorageSetup } from '../test/helpers/bridge.ts';
import type { SandboxUser } from '../test/helpers/flow.ts';
import { relyingParty } from '../test/helpers/flow.ts';
import { createTestDatabase } from '../test/helpers/postgres.ts';
import { createTestRedis } from '../test/helpers/redis.ts';
import { bridgeConfig } from './bridge-config.ts';
import type { Usage, UsageAnswer } from './child-ipc.ts';
import type { Cleanup } from './cleanup.ts';
import { type LoadResult, type Operation, runLoad } from './load.ts';
import { coreBusy, readCoreTicks } from './machine.ts';
import { type HeldTokens, login, TokenCalls } from './operations.ts';
import type { BenchOptions } from './options.ts';
import { type Child, type Pinning, startChild } from './processes.ts';
import { type RedisMemory, redisMemory } from './redis-memory.ts';
import {
  ALGORITHMS,
  type Algorithm,
  BENCH_CLIENTS,
  type BenchClient,
  CONSENT_CLIENT,
  type Engine,
  firstPartyClient,
  type ServerSpec,
} from './spec.ts';

export interface ScenarioRow extends LoadResult {
  setup: StorageSetup;
  scenario: string;
  engine: Engine;
  /** The bare-engine scenario this one is compared with. */
  comparedTo: string;
  concurrency: number;
  opsPerSecond: number;
  cpuMsPerOp: number;
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
  rssIdleBytes: number;
  rssBytes: number;
  redis: (RedisMemory & { bytesPerSession: number; lastingBytesPerSession: number }) | undefined;
}

export interface SetupResult {
  setup: StorageSetup;
  rows: ScenarioRow[];
  memory: MemoryRow[];
  /** error and warn lines in the bridge's log (messages only). */
  bridgeLog: { errors: number; warnings: number; samples: string[] };
}

interface EngineUnderTest {
  engine: Engine;
  server: Child;
  url: string;
  redis: { url: string; prefix: string } | undefined;
  /** The interaction lifetime: Redis keys expiring sooner belong to a login, not to a session. */
  loginScopedSeconds: number;
  rps: Map<string, oidc.Configuration>;
  calls: TokenCalls;
  usage(): Promise<Usage>;
  /** Per algorithm, one token set per worker (logins with offline_access). */
  held: Map<Algorithm, HeldTokens[]>;
}

export interface SetupContext {
  options: BenchOptions;
  pinning: Pinning;
  cleanup: Cleanup;
  sandboxUrl: string;
  users: SandboxUser[];
  keys: { jwks: ServerSpec['jwks']; cookieKeys: string[] };
  /**
   * Profiling: only this scenario (no memory phase, no bridge-only variants), with each server's
   * measured phase under the CPU profiler, written to `<dir>/<engine>-<setup>.cpuprofile`.
   */
  profile?: { dir: string; scenario: string };
}

const RS256_CLIENT = firstPartyClient('RS256');

/**
 * One storage setup: the bridge and the bare engine side by side (both pinned to the server core,
 * only one of them under load at a time), each on its own database / Redis prefix / data dir.
 * First the memory phase on fresh servers, then every scenario, the engines measured in
 * alternating slices so that both see the same machine.
 */
export async function runSetup(setup: StorageSetup, ctx: SetupContext): Promise<SetupResult> {
  const logFile = join(await tempDir(ctx.cleanup), 'bridge.log');
  const bare = await startEngine('bare', setup, ctx, logFile);
  const bridge = await startEngine('bridge', setup, ctx, logFile);
  const engines = [bare, bridge];
  const rows: ScenarioRow[] = [];
  const memory: MemoryRow[] = [];
  let nextUser = 0;
  const loginAs = (e: EngineUnderTest, client: BenchClient, extra: { scope: string; prompt?: string }) =>
    login(e.engine, e.rps.get(client.client_id) as oidc.Configuration, {
      ...extra,
      user: ctx.users[nextUser++ % ctx.users.length],
      alg: client.id_token_signed_response_alg as Algorithm,
    });
  const loginOp = (e: EngineUnderTest, client: BenchClient) => async () => {
    await loginAs(e, client, { scope: 'openid profile' });
  };

  if (!ctx.profile) {
    for (const e of engines) memory.push(await memoryPhase(setup, e, loginOp(e, RS256_CLIENT), ctx));
  }

  /** Measures the targets in alternating slices (see runLoad), so that they see the same machine. */
  const measure = async (concurrency: number, targets: Target[]) => {
    const ticks = readCoreTicks();
    const results = await runLoad(
      targets.map(({ e, op }) => ({
        op,
        usage: e.usage,
        ...(ctx.profile && profiling(e.server, profileFile(ctx.profile.dir, e.engine, setup))),
      })),
      {
        concurrency,
        warmupMs: ctx.options.warmupMs,
        durationMs: ctx.options.durationMs,
        rounds: ctx.profile ? 1 : ctx.options.rounds,
      },
    );
    const busy = coreBusy(ticks, readCoreTicks(), ctx.pinning.serverCore);
    targets.forEach(({ scenario, e, comparedTo }, i) => {
      const row = toRow(
        setup,
        scenario,
        e.engine,
        comparedTo ?? scenario,
        concurrency,
        results[i] as LoadResult,
      );
      row.serverCoreBusy = busy;
      rows.push(row);
      progress(row);
    });
  };
  const both = (scenario: string, op: (e: EngineUnderTest) => Operation): Target[] =>
    engines.map((e) => ({ scenario, e, op: op(e) }));

  let holding: Promise<void> | undefined;
  /** Per engine and algorithm, one token set per worker, from logins with offline_access. */
  const holdTokens = () => {
    if (!holding) {
      holding = (async () => {
        for (const e of engines) {
          for (const alg of ALGORITHMS) {
            const client = firstPartyClient(alg);
            const sets = Array.from({ length: tc }, () =>
              loginAs(e, client, { scope: 'openid profile offline_access', prompt: 'consent' }),
            );
            e.held.set(alg, await Promise.all(sets));
          }
        }
      })();
    }
    return holding;
  };
  const held = (e: EngineUnderTest, alg: Algorithm, worker: number) =>
    (e.held.get(alg) as HeldTokens[])[worker] as HeldTokens;

  const { loginConcurrency: lc, tokenConcurrency: tc } = ctx.options;
  const scenarios: Scenario[] = [
    {
      name: 'login',
      concurrency: lc,
      targets: async () => [
        ...both('login', (e) => loginOp(e, RS256_CLIENT)),
        {
          scenario: 'login + consent',
          e: bridge,
          op: loginOp(bridge, CONSENT_CLIENT),
          comparedTo: 'login',
          variant: true,
        },
      ],
    },
    {
      name: 'userinfo',
      concurrency: tc,
      targets: async () => {
        await holdTokens();
        return both('userinfo', (e) => (w) => e.calls.userinfo(held(e, 'RS256', w)));
      },
    },
    {
      name: 'introspection',
      concurrency: tc,
      targets: async () => {
        await holdTokens();
        return both('introspection', (e) => (w) => e.calls.introspect(RS256_CLIENT, held(e, 'RS256', w)));
      },
    },
    ...ALGORITHMS.map((alg) => ({
      name: `refresh_token ${alg}`,
      concurrency: tc,
      targets: async () => {
        await holdTokens();
        const client = firstPartyClient(alg);
        return both(`refresh_token ${alg}`, (e) => (w) => e.calls.refresh(client, held(e, alg, w), alg));
      },
    })),
    // MINI-PROGRAM: the mini-program token exchange (its own issue) is measured here once it lands:
    // a bridge-only scenario compared with the bare engine's closest equivalent.
  ];
  for (const scenario of scenarios) {
    if (ctx.profile && ctx.profile.scenario !== scenario.name) continue;
    const targets = await scenario.targets();
    await measure(
      scenario.concurrency,
      targets.filter((t) => !(ctx.profile && t.variant)),
    );
  }

  for (const e of engines) await e.calls.close();
  await Promise.all(engines.map((e) => e.server.stop()));
  return { setup, rows, memory, bridgeLog: await scanLog(logFile) };
}

/** One thing measured on one engine; a variant is a bridge-only extra (left out when profiling). */
interface Target {
  scenario: string;
  e: EngineUnderTest;
  op: Operation;
  comparedTo?: string;
  variant?: boolean;
}

interface Scenario {
  name: string;
  concurrency: number;
  targets(): Promise<Target[]>;
}

/** The scenario names, for --profile. */
export const SCENARIOS = [
  'login',
  'userinfo',
  'introspection',
  ...ALGORITHMS.map((alg) => `refresh_token ${alg}`),
];

export function profileFile(dir: string, engine: Engine, setup: StorageSetup): string {
  return join(dir, `${engine}-${setup}.cpuprofile`);
}

function profiling(server: Child, file: string) {
  return {
    beforeMeasure: () => server.ask({ type: 'profile-start' }).then(() => {}),
    afterMeasure: () => server.ask({ type: 'profile-stop', file }).then(() => {}),
  };
}

async function startEngine(
  engine: Engine,
  setup: StorageSetup,
  ctx: SetupContext,
  logFile: string,
): Promise<EngineUnderTest> {
  const storage = await prepareStorage(setup, ctx.cleanup);
  const server = await startChild({
    name: `${engine} (${setup})`,
    script: new URL('./server-process.ts', import.meta.url),
    core: ctx.pinning.serverCore,
  });
  ctx.cleanup.add(`stop the ${engine} server`, () => server.stop());
  const spec: ServerSpec = {
    engine,
    storage: setup,
    ...storage,
    sandboxUrl: ctx.sandboxUrl,
    jwks: ctx.keys.jwks,
    cookieKeys: ctx.keys.cookieKeys,
    clients: BENCH_CLIENTS,
    logFile,
  };
  const { url } = await server.ask<{ url: string }>({ type: 'start', spec });
  const rps = new Map<string, oidc.Configuration>();
  for (const client of BENCH_CLIENTS) rps.set(client.client_id, await relyingParty({ url }, client));
  const first = rps.get(RS256_CLIENT.client_id) as oidc.Configuration;
  return {
    engine,
    server,
    url,
    redis: storage.redisUrl ? { url: storage.redisUrl, prefix: storage.redisKeyPrefix } : undefined,
    loginScopedSeconds: bridgeConfig(spec).oidc.ttl.interaction,
    rps,
    calls: new TokenCalls(first, ctx.options.tokenConcurrency),
    usage: async () => {
      const { cpuMicros, rssBytes, heapUsedBytes } = await server.ask<UsageAnswer>({ type: 'usage' });
      return { cpuMicros, rssBytes, heapUsedBytes };
    },
    held: new Map(),
  };
}

/** N logins on a fresh server (each a new browser, so a new session), then Redis bytes and RSS. */
async function memoryPhase(
  setup: StorageSetup,
  e: EngineUnderTest,
  op: Operation,
  ctx: SetupContext,
): Promise<MemoryRow> {
  const idle = await e.usage();
  const [result] = (await runLoad([{ op, usage: e.usage }], {
    concurrency: ctx.options.loginConcurrency,
    warmupMs: 0,
    // Bounded whatever the machine: a slow one reports fewer sessions rather than running on.
    durationMs: 180_000,
    maxOps: ctx.options.sessions,
  })) as [LoadResult];
  const row = toRow(
    setup,
    `login ×${ctx.options.sessions} (memory phase)`,
    e.engine,
    '',
    ctx.options.loginConcurrency,
    result,
  );
  progress(row);
  const redis = e.redis ? await redisMemory(e.redis.url, e.redis.prefix, e.loginScopedSeconds) : undefined;
  return {
    setup,
    engine: e.engine,
    sessions: result.ops,
    rssIdleBytes: idle.rssBytes,
    rssBytes: result.serverRssBytes,
    redis: redis && {
      ...redis,
      bytesPerSession: redis.bytes / result.ops,
      lastingBytesPerSession: redis.lastingBytes / result.ops,
    },
  };
}

interface Storage {
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
}

/** Its own data dir, and on postgres+redis its own database and Redis prefix, all removed afterwards. */
async function prepareStorage(setup: StorageSetup, cleanup: Cleanup): Promise<Storage> {
  const dataDir = await tempDir(cleanup);
  if (setup === 'embedded') {
    return { dataDir, databaseUrl: undefined, redisUrl: undefined, redisKeyPrefix: 'wob:' };
  }
  const db = await createTestDatabase();
  cleanup.add('drop the benchmark database', () => db.drop());
  const redis = await createTestRedis();
  cleanup.add('delete the benchmark Redis keys', () => redis.cleanup());
  return { dataDir, databaseUrl: db.url, redisUrl: redis.url, redisKeyPrefix: redis.prefix };
}

async function tempDir(cleanup: Cleanup): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wob-bench-'));
  cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

function toRow(
  setup: StorageSetup,
  scenario: string,
  engine: Engine,
  comparedTo: string,
  concurrency: number,
  result: LoadResult,
): ScenarioRow {
  const cpuMsPerOp = result.ops ? result.serverCpuMs / result.ops : Number.NaN;
  return {
    ...result,
    setup,
    scenario,
    engine,
    comparedTo,
    concurrency,
    opsPerSecond: (result.ops / result.wallMs) * 1000,
    cpuMsPerOp,
    perCoreSecond: 1000 / cpuMsPerOp,
    serverCoreUtilisation: result.serverCpuMs / result.wallMs,
    serverCoreBusy: undefined,
  };
}

function progress(row: ScenarioRow): void {
  const errors = row.errors ? `  ${row.errors} ERRORS: ${row.errorSamples[0]}` : '';
  process.stderr.write(
    `bench: ${row.setup.padEnd(14)} ${row.engine.padEnd(6)} ${row.scenario.padEnd(28)} ` +
      `${row.ops} ops, ${row.cpuMsPerOp.toFixed(2)} cpu ms/op, p50 ${row.latencyMs.p50.toFixed(1)} ms${errors}\n`,
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
    const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? '';
    if (result.samples.length < 5 && !result.samples.includes(`${level}: ${msg}`)) {
      result.samples.push(`${level}: ${msg}`);
    }
  }
  return result;
}
