import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { Socket } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';

/** What a benchmarked process reports about itself: its own CPU time and memory. */
export type Usage = {
  /** process.cpuUsage(): user and system microseconds, all threads. */
  cpuMicros: number;
  /** Of cpuMicros, the kernel's part (system time: system calls, wake-ups, the loopback network). */
  systemCpuMicros: number;
  /** process.threadCpuUsage(): the main (JavaScript) thread's share of cpuMicros. */
  mainThreadCpuMicros: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Main-thread pauses for garbage collection so far (part of mainThreadCpuMicros). */
  gcPauseMicros: number;
};

export type UsageAnswer = Usage & { type: 'usage:done' };

type Handler = (message: Record<string, unknown>) => Promise<Record<string, unknown> | undefined>;

/**
 * The child side of bench/processes.ts: answers `usage` and any extra message types, and stops
 * cleanly on `stop` or when the parent goes away (so no benchmark process outlives its run).
 */
export function serveParent(options: { handlers?: Record<string, Handler>; stop: () => Promise<void> }): {
  ready(details: Record<string, unknown>): void;
} {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await options.stop().catch((error) => process.stderr.write(`stop failed: ${String(error)}\n`));
    process.disconnect?.();
    process.exit(0);
  };
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('message', (message: Record<string, unknown>) => {
    const type = String(message.type);
    if (type === 'stop') return void stop();
    const handler = BUILT_IN[type] ?? options.handlers?.[type];
    if (!handler) return process.send?.({ type: `${type}:done`, error: `unknown message ${type}` });
    handler(message).then(
      (answer) => process.send?.({ ...answer, type: `${type}:done` }),
      (error: unknown) =>
        process.send?.({
          type: `${type}:done`,
          error: error instanceof Error ? error.message : String(error),
        }),
    );
  });
  return { ready: (details) => process.send?.({ ...details, type: 'ready' }) };
}

let profiler: Session | undefined;

/**
 * V8's CPU profiler (what node --cpu-prof runs), over exactly the span the parent asks for, and
 * beside it the socket-write census (below).
 */
async function profileStart(): Promise<undefined> {
  profiler = new Session();
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
  countSocketWrites(true);
  return undefined;
}

/** Writes the profile to `file`, and the census so far to `writesFile`. */
async function profileStop(message: Record<string, unknown>): Promise<undefined> {
  if (!profiler) throw new Error('the profiler was not started');
  countSocketWrites(false);
  const { profile } = await profiler.post('Profiler.stop');
  profiler.disconnect();
  profiler = undefined;
  await writeFile(String(message.file), JSON.stringify(profile));
  await writeFile(String(message.writesFile), JSON.stringify(Object.fromEntries(socketWrites)));
  return undefined;
}

/**
 * The socket-write census: writes handed to the kernel, by peer, over the profiled spans (they add
 * up). Each is a system call, and on a VM a loopback write costs about a tenth of a millisecond,
 * more than most of the JavaScript of a request: this is where round trips show up, for every peer
 * (Redis, PostgreSQL, WeChat, the browser) and not only Redis. It wraps net.Socket's internal
 * _writeGeneric, which both write() and a corked writev() go through: fine for a diagnostic, not
 * for the product.
 */
const socketWrites = new Map<string, number>();
let counting = false;
let peerNames: Record<string, string> = {};

/** Names for the ports the server talks to (its stores, WeChat); others show as their port. */
export function namePeers(names: Record<string, string>): void {
  peerNames = names;
}

function countSocketWrites(on: boolean): void {
  if (on && !wrapped) wrapWrites();
  counting = on;
}

let wrapped = false;
function wrapWrites(): void {
  wrapped = true;
  const proto = Socket.prototype as unknown as { _writeGeneric: (...args: unknown[]) => unknown };
  const original = proto._writeGeneric;
  proto._writeGeneric = function (this: Socket & { server?: unknown }, ...args: unknown[]) {
    if (counting) {
      const peer = this.server
        ? 'HTTP responses'
        : (peerNames[String(this.remotePort)] ?? `port ${this.remotePort}`);
      socketWrites.set(peer, (socketWrites.get(peer) ?? 0) + 1);
    }
    return original.apply(this, args);
  };
}

const BUILT_IN: Record<string, Handler> = {
  usage,
  'profile-start': profileStart,
  'profile-stop': profileStop,
};

/** Garbage-collection pauses are counted from the start, so a reading's difference is a slice's. */
let gcPauseMicros = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauseMicros += entry.duration * 1000;
}).observe({ entryTypes: ['gc'] });

async function usage(): Promise<Usage> {
  const cpu = process.cpuUsage();
  const main = process.threadCpuUsage();
  const memory = process.memoryUsage();
  return {
    cpuMicros: cpu.user + cpu.system,
    systemCpuMicros: cpu.system,
    mainThreadCpuMicros: main.user + main.system,
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    gcPauseMicros,
  };
}
