import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { StorageSetup } from '../test/helpers/bridge.ts';
import type { EngineOptions, EngineUnderTest } from './engines.ts';
import { assertProfiled } from './scenarios.ts';
import { runSetup, type SetupContext } from './setup-run.ts';
import type { Engine } from './spec.ts';

/**
 * `npm run bench -- --instructions <scenario>`: the instructions each engine executes per operation
 * of one scenario, counted by valgrind's callgrind, on the main thread (JavaScript and what it
 * calls) and in all threads (V8's compilers and collector helpers too), so that the bridge's own cost
 * can be judged without the machine's weather: CPU time on a shared VM moves by a third within
 * minutes, and the ratios of timed runs by ±10 %. On 4 Dec the bare engine's main-thread count
 * repeated to half a percent and the bridge's to about five (JIT and GC timing still vary).
 * Instructions are not time (a cache miss costs more than an add): this complements the table.
 *
 * Each server runs under callgrind with instrumentation off (a few times slower) through its
 * start, the untimed first logins and the warm-up; it is counted only over a fixed number of
 * operations (`--ops`), tens of times slower (bench/README.md, "Instructions").
 */
export async function countInstructions(
  scenario: string,
  setup: StorageSetup,
  ctx: SetupContext,
  dir: string,
): Promise<void> {
  assertProfiled('--instructions', scenario);
  await mkdir(dir, { recursive: true });
  const tally = new Map<Engine, Counted>();
  const result = await runSetup(setup, { ...ctx, profile: { dir, scenario, tool: 'instructions', tally } });
  const perOp = {} as Record<Engine, Counted>;
  for (const engine of ['bare', 'bridge'] as const) {
    const row = result.rows.find((r) => r.engine === engine);
    const ops = row?.ops ?? Number.NaN;
    const counted = tally.get(engine) ?? { all: Number.NaN, main: Number.NaN, events: {}, model: [] };
    const events = Object.fromEntries(Object.entries(counted.events).map(([name, n]) => [name, n / ops]));
    perOp[engine] = { all: counted.all / ops, main: counted.main / ops, events, model: counted.model };
    const format = (n: number) => Math.round(n).toLocaleString('en');
    process.stdout.write(
      `${engine}: ${ops} × ${scenario} (${row?.errors} errors), instructions each: ` +
        `${format(perOp[engine].main)} on the main thread, ${format(perOp[engine].all)} in all threads\n`,
    );
  }
  const ratio = (part: 'main' | 'all') => ((perOp.bare[part] / perOp.bridge[part]) * 100).toFixed(1);
  process.stdout.write(
    `bridge/bare by instructions: main thread ${ratio('main')} %, all threads ${ratio('all')} % ` +
      `(${callgrindFile(dir, 'bridge', setup)}.*)\n`,
  );
  if (ctx.options.cacheSim) reportCacheModel(tally, perOp);
  const errors = result.rows.reduce((sum, row) => sum + row.errors, 0);
  // A failed operation is cheaper or dearer than a good one: the count is not the scenario's.
  if (errors > 0)
    throw new Error(`${errors} operations failed while counted: the counts above are not comparable`);
}

/**
 * Has both servers of a setup start under callgrind, each writing its own files (those an earlier
 * count left removed), with what counting needs of them.
 */
export async function underCallgrind(
  options: EngineOptions,
  dir: string,
  setup: StorageSetup,
  cacheSim = false,
): Promise<void> {
  options.wrapper = (engine) => callgrindCommand(callgrindFile(dir, engine, setup), cacheSim);
  // V8's memory reducer starts full collections when little is allocated per second of wall
  // time, which is what a server tens of times slower looks like: off, as it is under real load.
  // The young generation starts small and grows with what survives; under valgrind it had not
  // grown alike in both engines (on 6 Dec the bridge scavenged 44 times per 1,000 userinfo calls,
  // the bare engine 12, each scavenge's root scan some 400,000 instructions), where under real load
  // both run with semi-spaces of 16 MB or more. Both start there.
  options.nodeFlags = ['--no-memory-reducer', '--min-semi-space-size=16', ...options.nodeFlags];
  // The bridge's store probe every 5 s times out (2 s) when a collection or a compilation holds
  // its main thread that long, as it can tens of times slower, and the gate then answers 503:
  // probed only on demand, as after a server error.
  options.storeProbeMs = 0;
  for (const engine of ['bare', 'bridge'] as const)
    await clearCallgrindFiles(callgrindFile(dir, engine, setup));
}

/**
 * The command a server runs under: callgrind, counting nothing until asked; with `cacheSim`, its
 * cache and branch-predictor models too (`--cache-sim`: why the same instructions take longer).
 */
function callgrindCommand(file: string, cacheSim: boolean): string[] {
  return [
    'valgrind',
    '--tool=callgrind',
    '--instr-atstart=no',
    '--separate-threads=yes',
    ...(cacheSim ? ['--cache-sim=yes', '--branch-sim=yes'] : []),
    `--callgrind-out-file=${file}`,
    '-q',
  ];
}

export function callgrindFile(dir: string, engine: Engine, setup: StorageSetup): string {
  return join(dir, `${engine}-${setup}.callgrind`);
}

/** Removes what an earlier count of this engine left (callgrind numbers its dumps from 1). */
async function clearCallgrindFiles(file: string): Promise<void> {
  const dir = dirname(file);
  const mine = (await readdir(dir)).filter((name) => name.startsWith(basename(file)));
  await Promise.all(mine.map((name) => rm(join(dir, name), { force: true })));
}

/**
 * Counts each measured slice of `e`: instrumentation on and counters zeroed before it, a dump
 * after it (callgrind writes `<file>.<n>`), whose total is added to `tally`.
 */
export function countingInstructions(e: EngineUnderTest, file: string, tally: Map<Engine, Counted>) {
  const pid = String(e.server.pid);
  return {
    beforeMeasure: async () => {
      await control('--instr=on', pid);
      await control('--zero', pid);
    },
    afterMeasure: async () => {
      await control('--dump', pid);
      await control('--instr=off', pid);
      const counted = await lastDump(file);
      const sum = tally.get(e.engine) ?? { all: 0, main: 0, events: {}, model: counted.model };
      const events = { ...sum.events };
      for (const [name, n] of Object.entries(counted.events)) events[name] = (events[name] ?? 0) + n;
      tally.set(e.engine, {
        all: sum.all + counted.all,
        main: sum.main + counted.main,
        events,
        model: sum.model,
      });
    },
  };
}

const run = promisify(execFile);

async function control(command: string, pid: string): Promise<void> {
  await run('callgrind_control', [command, pid]);
}

/** Instructions of one measured slice: every thread's, and the main (JavaScript) thread's. */
export interface Counted {
  all: number;
  main: number;
  /** Every event callgrind counted on the main thread (`Ir`, and with --cache-sim `I1mr`, `Bcm`...). */
  events: Record<string, number>;
  /** The caches callgrind modelled (its `desc:` lines), with --cache-sim. */
  model: string[];
}

/**
 * The highest-numbered dump of `file`: with --separate-threads callgrind writes one file per thread
 * (`<file>.<n>-<thread>`, the main thread 01), each with a `summary:` line.
 */
async function lastDump(file: string): Promise<Counted> {
  const prefix = `${basename(file)}.`;
  const dumps = (await readdir(dirname(file)))
    .filter((name) => name.startsWith(prefix))
    .map((name) => /^(\d+)-(\d+)$/.exec(name.slice(prefix.length)))
    .flatMap((found) => (found ? [{ dump: Number(found[1]), thread: Number(found[2]) }] : []));
  if (dumps.length === 0) throw new Error(`callgrind wrote no dump beside ${file}`);
  const last = Math.max(...dumps.map((d) => d.dump));
  const counted: Counted = { all: 0, main: 0, events: {}, model: [] };
  for (const { thread } of dumps.filter((d) => d.dump === last)) {
    const text = await readFile(`${file}.${last}-${String(thread).padStart(2, '0')}`, 'utf8');
    const names = /^events: (.+)$/m.exec(text)?.[1]?.trim().split(/\s+/);
    const totals = /^summary: (.+)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number);
    if (!names || !totals || totals[0] === undefined || Number.isNaN(totals[0]))
      throw new Error(`no events and summary lines in callgrind's dump of ${file}`);
    // Instructions (Ir) come first whatever else is counted.
    counted.all += totals[0];
    if (thread !== 1) continue;
    counted.main += totals[0];
    counted.events = Object.fromEntries(names.map((name, i) => [name, totals[i] ?? 0]));
    counted.model = [...text.matchAll(/^desc: ((?:I1|D1|LL) cache: .*)$/gm)].map((m) => m[1] ?? '');
  }
  return counted;
}

/** With --cache-sim: what callgrind's models say of each operation's main thread, bridge beside bare. */
const MODELLED: Array<[event: string, label: string]> = [
  ['I1mr', 'instruction-cache misses (first level)'],
  ['D1mr', 'data-cache read misses (first level)'],
  ['D1mw', 'data-cache write misses (first level)'],
  ['Bcm', 'conditional branches mispredicted'],
  ['Bim', 'indirect branches mispredicted'],
];

function reportCacheModel(tally: Map<Engine, Counted>, perOp: Record<Engine, Counted>): void {
  const model = tally.get('bridge')?.model ?? [];
  const format = (n: number | undefined) => (n === undefined ? '-' : Math.round(n).toLocaleString('en'));
  const lines = [
    `callgrind's model, main thread, each operation (${model.join('; ') || 'caches not reported'}):`,
  ];
  for (const [event, label] of MODELLED) {
    const bare = perOp.bare.events[event];
    const bridge = perOp.bridge.events[event];
    const more =
      bare && bridge !== undefined
        ? ` (${bridge >= bare ? '+' : ''}${((bridge / bare - 1) * 100).toFixed(1)} %)`
        : '';
    lines.push(`  ${label}: bare ${format(bare)}, bridge ${format(bridge)}${more}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
