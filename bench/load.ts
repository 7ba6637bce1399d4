import type { Usage } from './child-ipc.ts';

/**
 * One operation of a scenario, run by worker `worker` (each worker keeps its own state). It may
 * resolve to its own latency in ms, when part of it (a client-side preparation) is not to be timed.
 */
export type Operation = (worker: number) => Promise<unknown>;

/** One server under load: the operation to repeat and how to read the server's own usage. */
export interface LoadTarget {
  op: Operation;
  /** The server's own CPU time and memory, read before and after each measured slice. */
  usage: () => Promise<Usage>;
  /** A running count of Redis round trips (see redis-round-trips.ts), when the server uses Redis. */
  redisRoundTrips?: (() => Promise<number>) | undefined;
  /** Around each measured slice only (the CPU profiler). */
  beforeMeasure?: () => Promise<void>;
  afterMeasure?: () => Promise<void>;
}

export interface LoadOptions {
  /** Concurrent workers, each running one operation after another (a closed loop). */
  concurrency: number;
  /** Run each target, unmeasured, for this long first (JIT, connection pools, caches). */
  warmupMs: number;
  /** Measured time per target, split into `rounds` slices; operations running at a slice's end finish and count. */
  durationMs: number;
  /**
   * Slices per target, taken in turn (A B B A A B ...), so that targets compared with each other
   * see the same machine even when other work on it comes and goes. Default 1.
   */
  rounds?: number;
  /** Or stop after this many measured operations (one target, one round). */
  maxOps?: number;
}

export interface LoadResult {
  ops: number;
  errors: number;
  /** The first few distinct error messages (they name the step and the status, never a token). */
  errorSamples: string[];
  wallMs: number;
  serverCpuMs: number;
  /** The part of serverCpuMs spent in the kernel (system time, all threads). */
  serverSystemCpuMs: number;
  /** The part of serverCpuMs spent on the main thread (the rest: GC helpers, compilers, libuv). */
  serverMainThreadCpuMs: number;
  /** The part of serverMainThreadCpuMs spent in garbage-collection pauses. */
  serverGcPauseMs: number;
  /** After the last measured slice. */
  serverRssBytes: number;
  /** Redis round trips during the measured slices; undefined without Redis. */
  redisRoundTrips: number | undefined;
  latencyMs: { p50: number; p99: number; mean: number };
  /**
   * Server CPU ms per operation in each measured slice, in round order: slice r of two targets ran
   * next to each other, so their ratios per round show how much the machine moved within the run.
   */
  sliceCpuMsPerOp: number[];
}

/**
 * Closed loops of `concurrency` workers against each target. Every phase is drained before the
 * usage reading that closes it, so the server CPU time read around a slice belongs to exactly the
 * operations counted in it (CPU ms per operation needs no correction).
 */
export async function runLoad(targets: LoadTarget[], options: LoadOptions): Promise<LoadResult[]> {
  const totals = targets.map(() => ({
    ...emptyPhase(),
    wallMs: 0,
    serverCpuMs: 0,
    serverSystemCpuMs: 0,
    serverMainThreadCpuMs: 0,
    serverGcPauseMs: 0,
    serverRssBytes: 0,
    redisRoundTrips: undefined as number | undefined,
    sliceCpuMsPerOp: [] as number[],
  }));
  if (options.warmupMs > 0) {
    for (const target of targets) await phase(target.op, options.concurrency, options.warmupMs, undefined);
  }
  const rounds = options.rounds ?? 1;
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const target = targets[i] as LoadTarget;
      const total = totals[i] as (typeof totals)[number];
      await target.beforeMeasure?.();
      const before = await target.usage();
      const redisBefore = await target.redisRoundTrips?.();
      const started = performance.now();
      const slice = await phase(target.op, options.concurrency, options.durationMs / rounds, options.maxOps);
      total.wallMs += performance.now() - started;
      const redisAfter = await target.redisRoundTrips?.();
      const after = await target.usage();
      if (redisBefore !== undefined && redisAfter !== undefined) {
        total.redisRoundTrips = (total.redisRoundTrips ?? 0) + redisAfter - redisBefore;
      }
      await target.afterMeasure?.();
      const sliceCpuMs = (after.cpuMicros - before.cpuMicros) / 1000;
      total.serverCpuMs += sliceCpuMs;
      total.sliceCpuMsPerOp.push(slice.latencies.length ? sliceCpuMs / slice.latencies.length : Number.NaN);
      total.serverSystemCpuMs += (after.systemCpuMicros - before.systemCpuMicros) / 1000;
      total.serverMainThreadCpuMs += (after.mainThreadCpuMicros - before.mainThreadCpuMicros) / 1000;
      total.serverGcPauseMs += (after.gcPauseMicros - before.gcPauseMicros) / 1000;
      total.serverRssBytes = after.rssBytes;
      for (const latency of slice.latencies) total.latencies.push(latency);
      total.errors += slice.errors;
      for (const sample of slice.errorSamples)
        if (total.errorSamples.size < 5) total.errorSamples.add(sample);
    }
  }
  return totals.map((total) => {
    const sorted = Float64Array.from(total.latencies).sort();
    return {
      ops: sorted.length,
      errors: total.errors,
      errorSamples: [...total.errorSamples],
      wallMs: total.wallMs,
      serverCpuMs: total.serverCpuMs,
      serverSystemCpuMs: total.serverSystemCpuMs,
      serverMainThreadCpuMs: total.serverMainThreadCpuMs,
      serverGcPauseMs: total.serverGcPauseMs,
      serverRssBytes: total.serverRssBytes,
      redisRoundTrips: total.redisRoundTrips,
      sliceCpuMsPerOp: total.sliceCpuMsPerOp,
      latencyMs: {
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        mean: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : Number.NaN,
      },
    };
  });
}

function emptyPhase(): PhaseResult {
  return { latencies: [], errors: 0, errorSamples: new Set() };
}

interface PhaseResult {
  latencies: number[];
  errors: number;
  errorSamples: Set<string>;
}

async function phase(
  op: Operation,
  concurrency: number,
  durationMs: number,
  maxOps: number | undefined,
): Promise<PhaseResult> {
  const result = emptyPhase();
  const deadline = performance.now() + durationMs;
  let started = 0;
  const more = () => performance.now() < deadline && (maxOps === undefined || started < maxOps);
  const worker = async (index: number) => {
    while (more()) {
      started++;
      const t0 = performance.now();
      try {
        const own = await op(index);
        result.latencies.push(typeof own === 'number' ? own : performance.now() - t0);
      } catch (error) {
        result.errors++;
        if (result.errorSamples.size < 5) result.errorSamples.add(describe(error));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  return result;
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The message, without anything that looks like a code, token or state (long opaque runs). */
function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/[\w-]{20,}/g, '…').slice(0, 300);
}
