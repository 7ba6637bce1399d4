import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import { createPostgresDatabase } from '../src/storage/postgres.ts';
import { openAccountsDatabase } from '../src/storage/sqlite/accounts-database.ts';
import type { StorageSetup } from '../test/helpers/bridge.ts';
import { relyingParty } from '../test/helpers/flow.ts';
import { createTestDatabase } from '../test/helpers/postgres.ts';
import { createTestRedis } from '../test/helpers/redis.ts';
import { bridgeConfig } from './bridge-config.ts';
import type { Usage, UsageAnswer } from './child-ipc.ts';
import type { Cleanup } from './cleanup.ts';
import type { HeldTokens } from './operations.ts';
import { TokenCalls } from './operations.ts';
import { seedPopulation } from './population.ts';
import { type Child, type Pinning, startChild } from './processes.ts';
import { redisRoundTripCounter } from './redis-round-trips.ts';
import {
  type Algorithm,
  BENCH_CLIENTS,
  CONSENT_CLIENT,
  type Engine,
  firstPartyClient,
  MINI_PROGRAM_BENCH_CLIENT,
  type ServerSpec,
} from './spec.ts';

/** A running server (bridge or bare engine) and the relying parties that talk to it. */
export interface EngineUnderTest {
  engine: Engine;
  server: Child;
  url: string;
  redis: { url: string; prefix: string } | undefined;
  /** The Redis server's running count of round trips (postgres+redis only). */
  redisRoundTrips: (() => Promise<number>) | undefined;
  /** The interaction lifetime: Redis keys expiring sooner belong to a login, not to a session. */
  loginScopedSeconds: number;
  /** openid-client per benchmark client, by client_id. */
  rps: Map<string, oidc.Configuration>;
  calls: TokenCalls;
  usage(): Promise<Usage>;
  /** Per algorithm, one token set per worker (logins with offline_access). */
  held: Map<Algorithm, HeldTokens[]>;
  /** Accounts in the bridge's database when it started (population.ts); the bare engine has none. */
  accountsAtStart: number | undefined;
}

export interface EngineOptions {
  pinning: Pinning;
  cleanup: Cleanup;
  sandboxUrl: string;
  keys: { jwks: ServerSpec['jwks']; cookieKeys: string[] };
  /** Keep-alive connections of the token-call client. */
  connections: number;
  logFile: string;
  /** Node or V8 options for the server process (--server-flag). */
  nodeFlags: string[];
  /** The bridge's periodic store probe (ServerSpec.storeProbeMs). */
  storeProbeMs?: number | undefined;
  /** A command each server's Node runs under, by engine (valgrind: instructions.ts). */
  wrapper?: ((engine: Engine) => string[]) | undefined;
  /** People already in the bridge's database when it starts (population.ts). */
  population: number;
}

/** Starts one server process on its own storage, pinned to the server core, stopped by `cleanup`. */
export async function startEngine(
  engine: Engine,
  setup: StorageSetup,
  options: EngineOptions,
): Promise<EngineUnderTest> {
  const storage = await prepareStorage(setup, options.cleanup);
  const accountsAtStart = engine === 'bridge' ? await populate(storage, options.population) : undefined;
  const server = await startChild({
    name: `${engine} (${setup})`,
    script: new URL('./server-process.ts', import.meta.url),
    core: options.pinning.serverCore,
    nodeFlags: options.nodeFlags,
    ...(options.wrapper && { wrapper: options.wrapper(engine) }),
  });
  options.cleanup.add(`stop the ${engine} server`, () => server.stop());
  const spec: ServerSpec = {
    engine,
    storage: setup,
    ...storage,
    sandboxUrl: options.sandboxUrl,
    jwks: options.keys.jwks,
    cookieKeys: options.keys.cookieKeys,
    // The bare engine knows no token exchange: the mini program's client is the bridge's alone.
    clients: engine === 'bridge' ? [...BENCH_CLIENTS, MINI_PROGRAM_BENCH_CLIENT] : BENCH_CLIENTS,
    logFile: options.logFile,
    ...(options.storeProbeMs !== undefined && { storeProbeMs: options.storeProbeMs }),
  };
  const { url } = await server.ask<{ url: string }>({ type: 'start', spec });
  const rps = new Map<string, oidc.Configuration>();
  for (const client of BENCH_CLIENTS) rps.set(client.client_id, await relyingParty({ url }, client));
  return {
    engine,
    server,
    url,
    redis: storage.redisUrl ? { url: storage.redisUrl, prefix: storage.redisKeyPrefix } : undefined,
    redisRoundTrips: storage.redisUrl
      ? await redisRoundTripCounter(storage.redisUrl, options.cleanup)
      : undefined,
    loginScopedSeconds: bridgeConfig(spec).oidc.ttl.interaction,
    rps,
    calls: new TokenCalls(
      rps.get(firstPartyClient('RS256').client_id) as oidc.Configuration,
      options.connections,
    ),
    usage: async () => {
      const { type: _, ...usage } = await server.ask<UsageAnswer>({ type: 'usage' });
      return usage;
    },
    held: new Map(),
    accountsAtStart,
  };
}

/**
 * Puts each measured slice of `engine` under the CPU profiler, into `<dir>/<engine>-<setup>.cpuprofile`,
 * with its socket-write census beside it.
 */
export function profiling(e: EngineUnderTest, dir: string, setup: StorageSetup) {
  const file = profileFile(dir, e.engine, setup);
  return {
    beforeMeasure: () => e.server.ask({ type: 'profile-start' }).then(() => {}),
    afterMeasure: () =>
      e.server.ask({ type: 'profile-stop', file, writesFile: writesFile(file) }).then(() => {}),
  };
}

export function profileFile(dir: string, engine: Engine, setup: StorageSetup): string {
  return join(dir, `${engine}-${setup}.cpuprofile`);
}

/** The socket-write census (child-ipc.ts) that goes with a profile. */
export function writesFile(profile: string): string {
  return profile.replace(/\.cpuprofile$/, '.writes.json');
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

/**
 * Migrates the bridge's database and fills it with people (population.ts) before the bridge opens
 * it: the embedded setup's accounts file admits one process at a time.
 */
async function populate(storage: Storage, people: number): Promise<number> {
  const db = storage.databaseUrl
    ? createPostgresDatabase(storage.databaseUrl)
    : await openAccountsDatabase(storage.dataDir);
  try {
    return await seedPopulation(db, people, CONSENT_CLIENT.client_id);
  } finally {
    await db.destroy();
  }
}

export async function tempDir(cleanup: Cleanup): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wob-bench-'));
  cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  return dir;
}
