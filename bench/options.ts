import { parseArgs } from 'node:util';
import { STORAGE_SETUPS, type StorageSetup } from '../test/helpers/bridge.ts';

export interface BenchOptions {
  setups: StorageSetup[];
  /** Unmeasured run-in before each measured phase. */
  warmupMs: number;
  /**
   * The least warm-up of the first scenario on servers that have served nothing timed yet (no memory
   * phase before it): 5 s, none extra with --quick.
   */
  coldWarmupMs: number;
  /** Measured phase of each scenario, per engine. */
  durationMs: number;
  /** Slices the measured phase is cut into, the engines taking turns. */
  rounds: number;
  /** Logins before Redis memory and RSS are read (a fresh server per setup). */
  sessions: number;
  /** People in the bridge's database before the run, besides the sandbox's (population.ts). */
  population: number;
  /** Closed-loop workers per scenario. */
  concurrency: number;
  /** CPU budget per algorithm for the signing limit. */
  signingMs: number;
  /** Where the JSON goes; bench/results by default. */
  resultsDir: string | undefined;
  /** Run only these scenarios ("memory" is the memory phase); all when undefined. */
  only: string[] | undefined;
  /** Profile this scenario (CPU profiler on both engines) instead of running the benchmark. */
  profile: string | undefined;
  /** Count the instructions of this scenario on both engines (callgrind) instead. */
  instructions: string | undefined;
  /** Operations counted per engine with --instructions. */
  ops: number;
  /** With --instructions: callgrind's cache and branch models too (first-level misses, mispredictions). */
  cacheSim: boolean;
  /** Node or V8 options for both server processes (e.g. --trace-gc); none by default. */
  serverFlags: string[];
}

export const USAGE = `Usage: npm run bench -- [options]
  --quick               a short run for development (a minute or two, not five)
  --setup <name>        embedded or postgres+redis (repeatable; default both)
  --duration <s>        measured seconds per scenario and engine (default 4)
  --warmup <s>          unmeasured seconds before each (default 1)
  --rounds <n>          slices the measured time is cut into, the engines taking turns (default 8)
  --sessions <n>        logins before Redis memory and RSS are read (default 2000)
  --population <n>      people already in the bridge's database (default 100000; 0 for none)
  --concurrency <n>     closed-loop workers per scenario (default 8)
  --signing <s>         CPU seconds per algorithm for the signing limit (default 1)
  --results <dir>       where the JSON goes (default bench/results)
  --only <scenario>     run only this scenario (repeatable): memory, login, userinfo, introspection,
                        "refresh_token RS256" (ES256, EdDSA)
  --profile <scenario>  profile one scenario on bridge and bare engine (V8 CPU profiler); also a
                        login variant ("login + consent page", ...) beside the bare login
  --instructions <scenario>  count the instructions per operation of one scenario on bridge and bare
                        engine under valgrind's callgrind (machine-independent; slow: minutes)
  --ops <n>             operations counted per engine with --instructions (default 1000)
  --cache-sim           with --instructions: also first-level cache misses and mispredicted branches
                        per operation (callgrind's cache and branch models; slower still)
  --server-flag <flag>  a Node or V8 option for both servers (repeatable), e.g. --server-flag=--trace-gc
  --help                this text`;

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: 'boolean' },
      setup: { type: 'string', multiple: true },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      sessions: { type: 'string' },
      population: { type: 'string' },
      concurrency: { type: 'string' },
      signing: { type: 'string' },
      results: { type: 'string' },
      only: { type: 'string', multiple: true },
      profile: { type: 'string' },
      instructions: { type: 'string' },
      ops: { type: 'string' },
      'cache-sim': { type: 'boolean' },
      'server-flag': { type: 'string', multiple: true },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick ?? false;
  // Under callgrind the servers run several times slower before counting starts: a longer warm-up.
  const counting = values.instructions !== undefined;
  if (values['cache-sim'] && !counting) throw new Error('--cache-sim goes with --instructions <scenario>');
  const setups = (values.setup ?? STORAGE_SETUPS).map((setup) => {
    if (!STORAGE_SETUPS.includes(setup as StorageSetup)) {
      throw new Error(`--setup must be one of ${STORAGE_SETUPS.join(', ')}`);
    }
    return setup as StorageSetup;
  });
  return {
    setups,
    warmupMs: seconds('warmup', values.warmup, counting ? 30 : quick ? 0.5 : 1),
    coldWarmupMs: quick ? 0 : 5000,
    durationMs: seconds('duration', values.duration, quick ? 1.5 : 4),
    rounds: positive('rounds', values.rounds, quick ? 2 : 8),
    sessions: positive('sessions', values.sessions, quick ? 200 : 2000),
    population: count('population', values.population, quick ? 10_000 : 100_000),
    concurrency: positive('concurrency', values.concurrency, 8),
    signingMs: seconds('signing', values.signing, quick ? 0.3 : 1),
    resultsDir: values.results,
    only: values.only,
    profile: values.profile,
    instructions: values.instructions,
    ops: positive('ops', values.ops, 1000),
    cacheSim: values['cache-sim'] ?? false,
    serverFlags: values['server-flag'] ?? [],
  };
}

function seconds(name: string, value: string | undefined, fallback: number): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number of seconds`);
  return n * 1000;
}

const positive = (name: string, value: string | undefined, fallback: number) =>
  integer(name, value, fallback, 1);
const count = (name: string, value: string | undefined, fallback: number) =>
  integer(name, value, fallback, 0);

function integer(name: string, value: string | undefined, fallback: number, min: 0 | 1): number {
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be ${min === 1 ? 'a positive integer' : 'a whole number'}`);
  }
  return n;
}
