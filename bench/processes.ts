import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Which cores the benchmark pins to: the server gets one core to itself, everything else the run
 * starts (this load generator, the sandbox) shares another. Without taskset, or with fewer than two
 * usable cores, nothing is pinned and "per core" figures are CPU-time based only.
 */
export interface Pinning {
  taskset: boolean;
  serverCore: number | undefined;
  loadCore: number | undefined;
}

export function choosePinning(): Pinning {
  const cores = usableCores();
  if (!cores || cores.length < 2) return { taskset: false, serverCore: undefined, loadCore: undefined };
  return { taskset: true, serverCore: cores[0], loadCore: cores[1] };
}

/** The cores this process may run on, from `taskset -p`; undefined when taskset is missing. */
function usableCores(): number[] | undefined {
  try {
    const out = execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' });
    const list = out.split(':').at(-1)?.trim() ?? '';
    return list.split(',').flatMap((part) => {
      const [from, to] = part.split('-').map(Number);
      if (from === undefined || Number.isNaN(from)) return [];
      const last = to ?? from;
      return Array.from({ length: last - from + 1 }, (_, i) => from + i);
    });
  } catch {
    return undefined;
  }
}

/** Moves every thread of this process (the load generator) onto `core`. */
export function pinSelf(core: number | undefined): void {
  if (core === undefined) return;
  execFileSync('taskset', ['-a', '-c', '-p', String(core), String(process.pid)], { stdio: 'ignore' });
}

/** A child started with an IPC channel: request/answer by message type. */
export interface Child {
  readonly name: string;
  /** The child's process id (taskset and the wrapper exec in place, so Node's own). */
  readonly pid: number | undefined;
  /** Sends `message` and resolves with the first message of type `${message.type}:done`. */
  ask<T>(message: { type: string; [key: string]: unknown }): Promise<T>;
  /** Asks the child to stop cleanly (connections closed, logs flushed); kills it after 10 s. */
  stop(): Promise<void>;
}

/** Every child this run started, so that a failure or Ctrl-C stops them all. */
const running = new Set<ChildProcess>();

/**
 * Starts `node <script>` (pinned to `core` with taskset when given) with an IPC channel, and waits
 * for its `{ type: 'ready' }` message. Its stdout and stderr pass through, prefixed by its name.
 */
export async function startChild(options: {
  name: string;
  script: URL;
  core: number | undefined;
  /** Node or V8 options for the child (before the script). */
  nodeFlags?: string[];
  /** A command Node runs under, in the same process (valgrind: instructions.ts). */
  wrapper?: string[];
}): Promise<Child & { ready: Record<string, unknown> }> {
  const node = [...(options.wrapper ?? []), process.execPath, ...(options.nodeFlags ?? [])];
  const line = [...node, fileURLToPath(options.script)];
  const pinned = options.core === undefined ? line : ['taskset', '-c', String(options.core), ...line];
  const [command = '', ...args] = pinned;
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  // A send to a child that just died is answered by the failed ask; without a listener it would crash us.
  child.on('error', (error) => process.stderr.write(`[${options.name}] ${error.message}\n`));
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (text: string) => {
      for (const line of text.split('\n').filter(Boolean))
        process.stderr.write(`[${options.name}] ${line}\n`);
    });
  }

  const ask = <T>(message: { type: string }): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (answer: { type: string; error?: string }) => {
        if (answer.type !== `${message.type}:done`) return;
        cleanup();
        if (answer.error) reject(new Error(`${options.name}: ${answer.error}`));
        else resolve(answer as T);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`${options.name} exited (code ${code}) while answering ${message.type}`));
      };
      const cleanup = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      if (!child.connected) {
        reject(new Error(`${options.name} is gone (asked ${message.type})`));
        return;
      }
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send(message, (error) => {
        if (!error) return;
        cleanup();
        reject(error);
      });
    });

  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('message', (message: Record<string, unknown>) => {
      if (message.type === 'ready') resolve(message);
      else reject(new Error(`${options.name} failed to start: ${String(message.error)}`));
    });
    child.once('exit', (code) =>
      reject(new Error(`${options.name} exited (code ${code}) before it was ready`)),
    );
  }).catch((error) => {
    child.kill('SIGKILL');
    throw error;
  });

  return {
    name: options.name,
    pid: child.pid,
    ready,
    ask,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.connected) child.send({ type: 'stop' });
    else child.kill('SIGTERM');
  });
}

/** Stops every child still running (used on failure and on Ctrl-C). */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...running].map((child) => stopChild(child)));
}
