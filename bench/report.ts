import type { Machine } from './machine.ts';
import type { Pinning } from './processes.ts';
import type { MemoryRow, RotationRow, ScenarioRow, SetupResult } from './setup-run.ts';
import type { SigningLimit } from './signing.ts';

export interface Report {
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  pinning: Pinning;
  options: Record<string, unknown>;
  setups: SetupResult[];
  skipped: Array<{ setup: string; reason: string }>;
  signing: SigningLimit[];
  targets: TargetCheck[];
  /** Failed operations plus error lines in the bridge's log, over the whole run. */
  totalErrors: number;
}

export interface TargetCheck {
  setup: string;
  what: string;
  target: string;
  measured: string;
  met: boolean;
  /**
   * Why a missed target says little about the bridge, when it does: the target lies inside the
   * spread of the run's per-round ratios (the machine moved the ratio across it), or the bare
   * engine's own rate is under an absolute target too (this machine or storage cannot meet it).
   */
  caveat?: string;
}

/** The issue's targets, per server core, measured beside the bare engine in the same run. */
const TARGETS = {
  loginRatio: 0.6,
  loginsPerCoreSecond: 350,
  tokenRatio: 0.9,
  redisBytesPerSession: 2.5 * 1024,
};

/** bridge / bare: how much of the bare engine's rate per core the bridge keeps (1 = as fast). */
export function ratioToBare(row: ScenarioRow, rows: ScenarioRow[]): number | undefined {
  if (row.engine !== 'bridge') return undefined;
  const bare = rows.find((r) => r.engine === 'bare' && r.scenario === row.comparedTo);
  return bare ? row.perCoreSecond / bare.perCoreSecond : undefined;
}

/**
 * The middle half of the per-round ratios (slice r of the bridge over slice r of the bare engine,
 * run next to each other): how far the machine's drift within the run moves the ratio. Undefined
 * with fewer than two rounds.
 */
export function ratioSpread(
  row: ScenarioRow,
  rows: ScenarioRow[],
): { low: number; high: number } | undefined {
  if (row.engine !== 'bridge') return undefined;
  const bare = rows.find((r) => r.engine === 'bare' && r.scenario === row.comparedTo);
  if (!bare || row.sliceCpuMsPerOp.length < 2) return undefined;
  const ratios = row.sliceCpuMsPerOp
    .map((bridgeMs, round) => (bare.sliceCpuMsPerOp[round] ?? Number.NaN) / bridgeMs)
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  if (ratios.length < 2) return undefined;
  const at = (q: number) => ratios[Math.round(q * (ratios.length - 1))] as number;
  return { low: at(0.25), high: at(0.75) };
}

export function checkTargets(setups: SetupResult[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const { setup, rows, memory, bridgeLog } of setups) {
    for (const row of rows.filter((r) => r.engine === 'bridge')) {
      const ratio = ratioToBare(row, rows);
      const isLogin = row.comparedTo === 'login';
      const want = isLogin ? TARGETS.loginRatio : TARGETS.tokenRatio;
      if (ratio !== undefined) {
        const spread = ratioSpread(row, rows);
        const met = ratio >= want;
        checks.push({
          setup,
          what: `${row.scenario}: bridge / bare`,
          target: `≥ ${percent(want)}`,
          measured: withSpread(ratio, spread, 1),
          met,
          ...(!met && spread && spread.high >= want ? { caveat: "within the run's spread" } : {}),
        });
      }
      if (isLogin) {
        // The bare engine's own rate beside it: where that is under the target too, this machine
        // (or storage) cannot meet it, whatever the bridge does.
        const bare = rows.find((r) => r.engine === 'bare' && r.scenario === row.comparedTo);
        const met = row.perCoreSecond >= TARGETS.loginsPerCoreSecond;
        const bareUnder = bare !== undefined && bare.perCoreSecond < TARGETS.loginsPerCoreSecond;
        checks.push({
          setup,
          what: `${row.scenario}: logins per core-second`,
          target: `≥ ${TARGETS.loginsPerCoreSecond}${bare ? `; bare engine ${bare.perCoreSecond.toFixed(0)}` : ''}`,
          measured: row.perCoreSecond.toFixed(0),
          met,
          ...(!met && bareUnder ? { caveat: 'the bare engine is under it too' } : {}),
        });
      }
    }
    for (const m of memory.filter((r) => r.engine === 'bridge' && r.redis)) {
      const perSession = m.redis?.lastingBytesPerSession ?? Number.NaN;
      checks.push({
        setup,
        what: `Redis bytes per active session, lasting keys (${m.sessions} sessions)`,
        target: `≤ ${TARGETS.redisBytesPerSession} B`,
        measured: `${perSession.toFixed(0)} B`,
        met: perSession <= TARGETS.redisBytesPerSession,
      });
    }
    const errors = setupErrors({ rows, memory, bridgeLog });
    checks.push({ setup, what: 'errors', target: '0', measured: String(errors), met: errors === 0 });
  }
  return checks;
}

export function totalErrors(setups: SetupResult[]): number {
  return setups.reduce((n, setup) => n + setupErrors(setup), 0);
}

/** Failed operations (memory phase included) and error lines in the bridge's log. */
function setupErrors({
  rows,
  memory,
  bridgeLog,
}: Pick<SetupResult, 'rows' | 'memory' | 'bridgeLog'>): number {
  const failed = [...rows, ...memory].reduce((n, r) => n + r.errors, 0);
  return failed + bridgeLog.errors;
}

/** Node or V8 options the servers ran with (--server-flag), when any: the figures are theirs. */
function serverFlagsLine(flags: unknown): string[] {
  return Array.isArray(flags) && flags.length > 0 ? [`server flags: ${flags.join(' ')}`] : [];
}

export function formatReport(report: Report): string {
  const out: string[] = [];
  const { machine, pinning } = report;
  out.push(
    `wechat-oidc-bridge benchmark, ${report.startedAt}`,
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, ` +
      `Node ${machine.node}, oidc-provider ${machine.oidcProvider}`,
    `code: ${machine.revision}; load average at start ${machine.loadAverageAtStart.join(' ')}, ` +
      `at end ${machine.loadAverageAtEnd?.join(' ') ?? '?'}` +
      (machine.stealPercent === undefined ? '' : `; hypervisor steal ${machine.stealPercent} % of CPU time`),
    pinning.taskset
      ? `pinning: server on core ${pinning.serverCore}, load generator and WeChat sandbox on core ${pinning.loadCore} (taskset); PostgreSQL and Redis unpinned`
      : 'pinning: none (taskset missing or one core): per-core figures come from server CPU time only',
    ...serverFlagsLine(report.options.serverFlags),
    'ops/core-s = 1000 / cpu ms/op: what one fully used server core sustains (server CPU time, not wall time);',
    "core% = server CPU / wall time; bridge/bare = ops/core-s of the bridge over the bare engine's",
    '(in brackets, the middle half of the ratios per round: how much the machine moved during the run)',
    '',
  );
  for (const setup of report.setups) {
    out.push(`== ${setup.setup} ==`);
    if (setup.accountsAtStart !== undefined) {
      const people = setup.accountsAtStart.toLocaleString('en');
      out.push(`the bridge's database held ${people} accounts at the start (--population)`);
    }
    out.push(scenarioTable(setup.rows), '');
    out.push(memoryTable(setup.memory), '');
    if (setup.rotation.length > 0) out.push(...rotationLines(setup.rotation), '');
    const log = setup.bridgeLog;
    if (log.errors || log.warnings) {
      out.push(
        `bridge log: ${log.errors} error line(s), ${log.warnings} warning(s): ${log.samples.join('; ')}`,
        '',
      );
    }
  }
  for (const skipped of report.skipped) out.push(`== ${skipped.setup}: SKIPPED (${skipped.reason}) ==`, '');
  out.push(signingTable(report), '');
  out.push('targets (per server core, beside the bare engine):');
  for (const check of report.targets) {
    out.push(
      `  ${check.met ? 'met    ' : 'MISSED '} ${check.setup.padEnd(15)} ${check.what.padEnd(52)} ${check.measured.padStart(9)}  (target ${check.target})${check.caveat ? `: ${check.caveat}` : ''}`,
    );
  }
  if (report.totalErrors > 0) {
    out.push('', `!!! ${report.totalErrors} ERROR(S) IN THIS RUN: the figures above are not valid !!!`);
    for (const setup of report.setups) {
      const failed = [
        ...setup.memory.map((m) => ({ ...m, scenario: 'memory phase login' })),
        ...setup.rows,
      ].filter((r) => r.errors > 0);
      for (const r of failed) {
        out.push(
          `  ${setup.setup} ${r.engine} ${r.scenario}: ${r.errors} errors, e.g. ${r.errorSamples.join(' | ')}`,
        );
      }
      if (setup.bridgeLog.errors > 0) {
        out.push(`  ${setup.setup} bridge log: ${setup.bridgeLog.samples.join(' | ')}`);
      }
    }
  }
  return out.join('\n');
}

function scenarioTable(rows: ScenarioRow[]): string {
  const header = [
    'scenario',
    'engine',
    'ops/s',
    'core%',
    'ops/core-s',
    'cpu ms/op',
    'sys ms/op',
    'main ms/op',
    'gc ms/op',
    'redis rt/op',
    'p50 ms',
    'p99 ms',
    'errors',
    'bridge/bare',
  ];
  const body = rows.map((row) => {
    const ratio = ratioToBare(row, rows);
    return [
      row.scenario,
      row.engine,
      row.opsPerSecond.toFixed(0),
      (row.serverCoreUtilisation * 100).toFixed(0),
      row.perCoreSecond.toFixed(0),
      row.cpuMsPerOp.toFixed(3),
      row.systemMsPerOp.toFixed(3),
      row.mainThreadMsPerOp.toFixed(3),
      row.gcMsPerOp.toFixed(3),
      row.redisRoundTripsPerOp === undefined ? '-' : row.redisRoundTripsPerOp.toFixed(1),
      row.latencyMs.p50.toFixed(1),
      row.latencyMs.p99.toFixed(1),
      row.errors ? `${row.errors} !!` : '0',
      ratio === undefined ? '' : withSpread(ratio, ratioSpread(row, rows)),
    ];
  });
  return table(header, body);
}

/**
 * A session's Redis grows with every refresh: the used token stays until it would have expired.
 * Said per rotation, so that an operator can size Redis for the refresh rate of their clients.
 */
function rotationLines(rows: RotationRow[]): string[] {
  return [
    'refresh_token rotation: each refresh keeps the used token in Redis until it would have expired',
    '(reuse detection), with an entry in its grant index:',
    ...rows.map(
      (r) =>
        `  ${r.engine.padEnd(6)} ${r.refreshTokens} refresh tokens after the refresh scenarios: ` +
        `${r.bytesPerRefreshToken.toFixed(0)} B each + ${r.indexBytesPerRefreshToken.toFixed(0)} B of grant index`,
    ),
  ];
}

function memoryTable(rows: MemoryRow[]): string {
  const header = [
    'memory after N logins',
    'engine',
    'sessions',
    'Redis B/session',
    'of which lasting',
    'Redis keys/session',
    'RSS idle MB',
    'RSS MB',
  ];
  const body = rows.map((m) => [
    '',
    m.engine,
    String(m.sessions),
    m.redis ? m.redis.bytesPerSession.toFixed(0) : '-',
    m.redis ? m.redis.lastingBytesPerSession.toFixed(0) : '-',
    m.redis ? (m.redis.keys / m.sessions).toFixed(2) : '-',
    mb(m.rssIdleBytes),
    mb(m.rssBytes),
  ]);
  const lines = [table(header, body)];
  for (const m of rows.filter((r) => r.redis)) {
    const kinds = Object.entries(m.redis?.byKind ?? {})
      .sort(([, a], [, b]) => b.bytes - a.bytes)
      .map(([kind, { bytes, lasting }]) => `${kind} ${(bytes / m.sessions).toFixed(0)}${lasting ? '' : '*'}`);
    lines.push(`  ${m.engine}, Redis bytes per session by key: ${kinds.join(', ')}`);
  }
  if (rows.some((r) => r.redis)) {
    lines.push(
      '  lasting: the keys that outlive the login. * login-scoped: spent codes kept for replay detection, used',
      '  WeChat states and code claims expire within the interaction lifetime; they scale with the login rate, not with sessions.',
    );
  }
  return lines.join('\n');
}

function signingTable(report: Report): string {
  const header = [
    'signing limit',
    'signatures/core-s',
    ...report.setups.map((s) => `refresh ${s.setup} (bridge) / limit`),
  ];
  const body = report.signing.map((limit) => [
    limit.alg,
    limit.perCoreSecond.toFixed(0),
    ...report.setups.map((s) => {
      const row = s.rows.find((r) => r.engine === 'bridge' && r.scenario === `refresh_token ${limit.alg}`);
      return row
        ? `${row.perCoreSecond.toFixed(0)} = ${percent(row.perCoreSecond / limit.perCoreSecond)}`
        : '-';
    }),
  ]);
  return table(header, body);
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A ratio with the middle half of its per-round ratios in brackets, when there are rounds. */
function withSpread(ratio: number, spread: { low: number; high: number } | undefined, digits = 0): string {
  if (!spread) return percent(ratio, digits);
  return `${percent(ratio, digits)} (${(spread.low * 100).toFixed(0)}-${(spread.high * 100).toFixed(0)})`;
}

function percent(ratio: number, digits = 0): string {
  return `${(ratio * 100).toFixed(digits)} %`;
}

function mb(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(0);
}
