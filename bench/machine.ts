import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { PACKAGE_ROOT } from '../src/package-root.ts';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  oidcProvider: string;
  /** The commit measured, and whether the working tree had changes on top of it. */
  revision: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
  /**
   * The share of all cores' time the hypervisor gave to other guests while this run wanted it
   * (steal, from /proc/stat), in percent, over the whole run; undefined where it cannot be read.
   * On a shared host the figures move with it: ratios less than absolute rates.
   */
  stealPercent?: number;
  /** /proc/stat's ticks at the start, for stealPercent (not reported). */
  ticksAtStart?: { steal: number; total: number };
}

export function describeMachine(): Machine {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    oidcProvider: packageVersion('oidc-provider'),
    revision: revision(),
    loadAverageAtStart: loadavg().map(round2),
    ticksAtStart: readAllCoreTicks(),
  };
}

function revision(): string {
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: PACKAGE_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  try {
    const changed = git('status', '--porcelain').split('\n').filter(Boolean).length;
    return `${git('rev-parse', '--short', 'HEAD')}${changed ? ` + ${changed} changed files` : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function packageVersion(name: string): string {
  const json = readFileSync(`${PACKAGE_ROOT}/node_modules/${name}/package.json`, 'utf8');
  return (JSON.parse(json) as { version: string }).version;
}

/** Busy, stolen and total clock ticks of one core since boot, from /proc/stat (Linux). */
type CoreTicks = { busy: number; steal: number; total: number };

export function readCoreTicks(): Map<number, CoreTicks> | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  const cores = new Map<number, CoreTicks>();
  for (const line of text.split('\n')) {
    const match = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = (match[2] ?? '').split(/\s+/).map(Number);
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
    cores.set(Number(match[1]), { busy, steal: steal ?? 0, total: busy + (idle ?? 0) + (iowait ?? 0) });
  }
  return cores;
}

/** How busy `core` was between two readings, 0..1 (everything on it: ours and everyone else's). */
export function coreBusy(
  before: Map<number, CoreTicks> | undefined,
  after: Map<number, CoreTicks> | undefined,
  core: number | undefined,
): number | undefined {
  if (core === undefined) return undefined;
  const a = before?.get(core);
  const b = after?.get(core);
  if (!a || !b || b.total === a.total) return undefined;
  return (b.busy - a.busy) / (b.total - a.total);
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

export function finishMachine(machine: Machine): Machine {
  const { ticksAtStart: start, ...finished } = machine;
  const end = readAllCoreTicks();
  const stealPercent =
    start && end && end.total > start.total
      ? round2((100 * (end.steal - start.steal)) / (end.total - start.total))
      : undefined;
  return { ...finished, loadAverageAtEnd: loadavg().map(round2), stealPercent };
}

/** Steal and total clock ticks of all cores together since boot. */
function readAllCoreTicks(): { steal: number; total: number } | undefined {
  const cores = readCoreTicks();
  if (!cores || cores.size === 0) return undefined;
  let steal = 0;
  let total = 0;
  for (const core of cores.values()) {
    steal += core.steal;
    total += core.total;
  }
  return { steal, total };
}
