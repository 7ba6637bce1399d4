import { mkdir, readFile, rm } from 'node:fs/promises';
import type { StorageSetup } from '../test/helpers/bridge.ts';
import { profileFile, writesFile } from './engines.ts';
import { assertProfiled } from './scenarios.ts';
import { runSetup, type SetupContext } from './setup-run.ts';
import type { Engine } from './spec.ts';

/**
 * `npm run bench -- --profile <scenario>`: one scenario on bridge and bare engine with V8's CPU
 * profiler (the one `node --cpu-prof` runs) over each measured phase, then where the CPU went per
 * operation, side by side, so that what the bridge spends beyond the engine stands out. The
 * .cpuprofile files open in Chrome DevTools or speedscope.
 */
export async function profileScenario(
  scenario: string,
  setup: StorageSetup,
  ctx: SetupContext,
  dir: string,
): Promise<void> {
  assertProfiled('--profile', scenario);
  await mkdir(dir, { recursive: true });
  for (const engine of ENGINES) await rm(profileFile(dir, engine, setup), { force: true });
  const result = await runSetup(setup, { ...ctx, profile: { dir, scenario, tool: 'cpu' } });
  const profiles = {} as Record<Engine, ProfileSummary>;
  const writes = {} as Record<Engine, Map<string, number>>;
  for (const engine of ENGINES) {
    const row = result.rows.find((r) => r.engine === engine);
    const ops = row?.ops ?? Number.NaN;
    const file = profileFile(dir, engine, setup);
    const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
    profiles[engine] = summariseProfile(profile, ops);
    const counted = JSON.parse(await readFile(writesFile(file), 'utf8')) as Record<string, number>;
    writes[engine] = new Map(Object.entries(counted).map(([peer, n]) => [peer, n / ops]));
    process.stdout.write(
      `${engine}: ${row?.ops} × ${scenario}, ${row?.cpuMsPerOp.toFixed(3)} server cpu ms each with the profiler on ` +
        `(the kernel's part ${row?.systemMsPerOp.toFixed(3)}); ${file}\n`,
    );
  }
  process.stdout.write(`\n${compareWrites(writes.bare, writes.bridge)}\n`);
  process.stdout.write(`\n${compareProfiles(profiles.bare, profiles.bridge)}\n`);
}

/** The socket-write census (child-ipc.ts) per operation, by peer, bridge beside bare engine. */
export function compareWrites(bare: Map<string, number>, bridge: Map<string, number>): string {
  const peers = [...new Set([...bare.keys(), ...bridge.keys()])].sort();
  const total = (m: Map<string, number>) => [...m.values()].reduce((sum, n) => sum + n, 0);
  const line = (label: string, a: number, b: number) =>
    `${a.toFixed(1).padStart(8)} ${b.toFixed(1).padStart(8)} ${(b - a).toFixed(1).padStart(8)}  ${label}`;
  return [
    'socket writes per operation, by peer (each one a system call):',
    `${'bare'.padStart(8)} ${'bridge'.padStart(8)} ${'extra'.padStart(8)}`,
    ...peers.map((peer) => line(peer, bare.get(peer) ?? 0, bridge.get(peer) ?? 0)),
    line('all', total(bare), total(bridge)),
  ].join('\n');
}

const ENGINES: Engine[] = ['bare', 'bridge'];

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Microseconds per operation, keyed by package or by function. */
export interface ProfileSummary {
  busy: number;
  self: Map<string, number>;
  /** Self time of Node internals and native code charged to the package that called into them. */
  owner: Map<string, number>;
  functions: Map<string, number>;
}

/** Self time (the code on the CPU) per operation, by package and by function, idle excluded. */
export function summariseProfile(profile: CpuProfile, ops: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node);
  }
  const ownerOf = (node: ProfileNode): string => {
    for (let at: ProfileNode | undefined = node; at; at = parent.get(at.id)) {
      if (isLibraryOrOurs(at.callFrame.url)) return categoryOf(at);
    }
    // A write that only Node's own code led to (a stream flushing later): the socket's.
    return isCensus(node.callFrame.url) ? 'node:net' : categoryOf(node);
  };
  const summary: ProfileSummary = { busy: 0, self: new Map(), owner: new Map(), functions: new Map() };
  // The profiler's own work while it hands the profile over is not the server's.
  const profilerOwn = (node: ProfileNode) => {
    for (let at: ProfileNode | undefined = node; at; at = parent.get(at.id)) {
      if (at.callFrame.url === 'node:inspector') return true;
    }
    return false;
  };
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === '(idle)' || profilerOwn(node)) return;
    const micros = (profile.timeDeltas[i] ?? 0) / ops;
    summary.busy += micros;
    add(summary.self, categoryOf(node), micros);
    add(summary.owner, ownerOf(node), micros);
    const frame = node.callFrame;
    add(
      summary.functions,
      `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`,
      micros,
    );
  });
  return summary;
}

export function compareProfiles(bare: ProfileSummary, bridge: ProfileSummary, top = 30): string {
  const rows = (a: Map<string, number>, b: Map<string, number>, n: number) => {
    const keys = new Set([...a.keys(), ...b.keys()]);
    return [...keys]
      .map((key) => ({ key, bare: a.get(key) ?? 0, bridge: b.get(key) ?? 0 }))
      .sort((x, y) => y.bridge - y.bare - (x.bridge - x.bare))
      .slice(0, n)
      .map(
        (r) =>
          `${r.bare.toFixed(0).padStart(8)} ${r.bridge.toFixed(0).padStart(8)} ${(r.bridge - r.bare).toFixed(0).padStart(8)}  ${r.key}`,
      );
  };
  const header = `${'bare µs'.padStart(8)} ${'bridge µs'.padStart(8)} ${'extra'.padStart(8)}  (per operation, self time as sampled: native writes include waits for the core)`;
  return [
    `busy per operation: bare ${(bare.busy / 1000).toFixed(2)} ms, bridge ${(bridge.busy / 1000).toFixed(2)} ms`,
    '',
    'by package, largest extra first:',
    header,
    ...rows(bare.self, bridge.self, 25),
    '',
    'by calling package (Node internals and native code charged to the package that called them):',
    header,
    ...rows(bare.owner, bridge.owner, 25),
    '',
    'by function, largest extra first:',
    header,
    ...rows(bare.functions, bridge.functions, top),
  ].join('\n');
}

function add(map: Map<string, number>, key: string, micros: number): void {
  map.set(key, (map.get(key) ?? 0) + micros);
}

/**
 * A frame that can own the Node internals it calls. Not the socket-write census's wrapper
 * (child-ipc.ts), which sits under every socket write while profiling: the write belongs to whoever
 * called it (ioredis, pg, koa).
 */
function isLibraryOrOurs(url: string): boolean {
  if (isCensus(url)) return false;
  return url.includes('/node_modules/') || /\/(src|bench|test)\//.test(url);
}

const isCensus = (url: string) => url.endsWith('/bench/child-ipc.ts');

/** node_modules/<package>, node:<builtin>, our src/<folder>, or V8's own (GC, program). */
function categoryOf(node: ProfileNode): string {
  const { url, functionName } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('node:')) return url;
  const ours = /\/(src|bench|test)\/([^/]+)/.exec(url);
  if (ours) return `${ours[1]}/${(ours[2] as string).replace(/\.ts$/, '')}`;
  return url;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/(.*)$/.exec(url);
  if (pkg) return pkg[1] as string;
  const ours = /\/((?:src|bench|test)\/.*)$/.exec(url);
  return ours ? (ours[1] as string) : url;
}
