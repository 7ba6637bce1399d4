/**
 * Bounded, loopback-only load and fault runs against the real stack (issue 6, item 7):
 *
 *   concurrent     200 logins over 20 workers, through a load balancer in front of two instances
 *   kill           100 logins over 10 workers; one instance is SIGKILLed after 30 logins, the
 *                  balancer sends everything to the survivor, interrupted logins carry on there
 *   redis-restart  100 logins over 10 workers on a Redis of our own (append-only) that is stopped
 *                  and started again mid-run; sessions and tokens issued before it must survive
 *
 * Each run prints what was lost (the goal: nothing) and exits non-zero when anything was.
 * A "browser" retries a failed request (connection error or 5xx) a few times, as a person
 * pressing reload would; a login that still fails is counted as lost.
 *
 *   node scripts/load-and-faults.ts [concurrent|kill|redis-restart ...]   (npm run faults)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { type Bridge, RP, startAnotherInstance, startBridge, WEBSITE_APP } from '../test/helpers/bridge.ts';
import { TestBrowser } from '../test/helpers/browser.ts';
import {
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../test/helpers/flow.ts';
import { type LoadBalancer, startLoadBalancer } from '../test/production/load-balancer.ts';
import { freePort } from '../test/production/own-redis.ts';

interface Outcome {
  scenario: string;
  logins: number;
  completed: number;
  lost: number;
  retriedRequests: number;
  notes: string[];
}

/** A browser that reloads a failed request (up to 10 times, 500 ms apart) as a person would. */
class PatientBrowser extends TestBrowser {
  retries = 0;
  override async request(url: string, init: Parameters<TestBrowser['request']>[1] = {}) {
    for (let attempt = 0; ; attempt++) {
      try {
        const hop = await super.request(url, init);
        if (hop.status < 500 || attempt >= 10) return hop;
      } catch (error) {
        if (attempt >= 10) throw error;
      }
      this.retries++;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

async function runLogins(
  rp: oidc.Configuration,
  bridge: Bridge,
  total: number,
  workers: number,
  onCompleted: (count: number) => void | Promise<void>,
) {
  const users = await Promise.all(
    Array.from({ length: workers }, (_, i) => createSandboxUser(bridge, `负载用户 ${i} 🚀`)),
  );
  let next = 0;
  let completed = 0;
  let retried = 0;
  const failures: string[] = [];
  const refreshTokens: string[] = [];
  const rescans: string[] = [];
  await Promise.all(
    users.map(async (user) => {
      while (next < total) {
        next++;
        const browser = new PatientBrowser();
        try {
          await oneLogin(rp, browser, user, refreshTokens).catch(async (error) => {
            // A login whose step died with an instance ends on a "try again" page: the person
            // scans again. Counted, not lost; lost is a login that fails twice.
            rescans.push(error instanceof Error ? error.message.slice(0, 160) : String(error));
            // Starting over from the application, as the person would (a fresh browser: a session
            // the dead instance may have created would skip the login page).
            const again = new PatientBrowser();
            await oneLogin(rp, again, user, refreshTokens).finally(() => {
              retried += again.retries;
            });
          });
          completed++;
          await onCompleted(completed);
        } catch (error) {
          failures.push(error instanceof Error ? error.message.slice(0, 160) : String(error));
        } finally {
          retried += browser.retries;
        }
      }
    }),
  );
  return { completed, failures, retried, refreshTokens, rescans };
}

async function oneLogin(
  rp: oidc.Configuration,
  browser: PatientBrowser,
  user: SandboxUser,
  refreshTokens: string[],
) {
  const login = await startLogin(rp, { browser, scope: 'openid offline_access', prompt: 'consent' });
  const redirect = await continueToRp(login, await decideOnWeChat(login, { user, allow: true }));
  const tokens = await withRetry(() => oidc.authorizationCodeGrant(rp, redirect, login.checks));
  if (tokens.claims()?.sub !== user.unionid) throw new Error('wrong sub');
  if (tokens.refresh_token) refreshTokens.push(tokens.refresh_token);
}

/** Token calls are retried on 5xx only: a code is single-use, and a retry after success says so. */
async function withRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      const status = (error as { status?: number }).status;
      const transient = status === undefined || status >= 500;
      if (!transient || attempt >= 6) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

async function twoInstances(): Promise<{ lb: LoadBalancer; first: Bridge; close(): Promise<void> }> {
  const lb = await startLoadBalancer();
  const first = await startBridge({
    storage: 'postgres+redis',
    configure: (c) => ({ ...c, issuer: lb.url }),
  });
  return {
    lb,
    first,
    close: async () => {
      await lb.close();
      await first.close();
    },
  };
}

async function concurrent(): Promise<Outcome> {
  const { lb, first, close } = await twoInstances();
  const second = await startAnotherInstance(first);
  lb.targets = [first.instanceUrl, second.instanceUrl];
  try {
    const rp = await relyingParty({ url: lb.url });
    const run = await runLogins(rp, first, 200, 20, () => {});
    const served = new Set(lb.served.map((s) => s.instance));
    return outcome('concurrent', 200, run, [
      `requests served by ${served.size} instances: ${lb.served.length}`,
    ]);
  } finally {
    await second.close();
    await close();
  }
}

/** A second instance in its own process, so that it can really be killed. */
async function spawnInstance(
  first: Bridge,
  issuer: string,
): Promise<{ url: string; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'wob-fault-'));
  const file = join(dir, 'config.json');
  const config = {
    port,
    issuer,
    dataDir: first.config.dataDir,
    log: { level: 'warn' },
    storage: { redisKeyPrefix: first.config.storage.redisKeyPrefix },
    wechat: {
      apps: [{ kind: 'website', appid: WEBSITE_APP.appid, name: 'w', secret: { value: WEBSITE_APP.secret } }],
    },
    clients: [RP],
    limits: { rateLimits: { enabled: false } },
  };
  await writeFile(file, JSON.stringify(config));
  const child = spawn(process.execPath, ['src/main.ts'], {
    env: {
      ...process.env,
      CONFIG_FILE: file,
      DATABASE_URL: first.config.storage.databaseUrl,
      REDIS_URL: first.config.storage.redisUrl,
      WECHAT_OPEN_BASE_URL: first.sandboxUrl,
      WECHAT_API_BASE_URL: first.sandboxUrl,
      NODE_ENV: 'development',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, child, dir };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  throw new Error('the second instance did not start');
}

async function kill(): Promise<Outcome> {
  const { lb, first, close } = await twoInstances();
  const second = await spawnInstance(first, lb.url);
  lb.targets = [first.instanceUrl, second.url];
  try {
    const rp = await relyingParty({ url: lb.url });
    let killed = false;
    const run = await runLogins(rp, first, 100, 10, (done) => {
      if (done === 30 && !killed) {
        killed = true;
        second.child.kill('SIGKILL');
        // The balancer's health check notices; until then in-flight requests see 502 and are reloaded.
        setTimeout(() => {
          lb.pick = () => 0;
        }, 300);
      }
    });
    return outcome('kill', 100, run, [`instance 2 (pid ${second.child.pid}) SIGKILLed after 30 logins`]);
  } finally {
    second.child.kill('SIGKILL');
    await rm(second.dir, { recursive: true, force: true });
    await close();
  }
}

async function redisRestart(): Promise<Outcome> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'wob-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--dir',
    dir,
    '--save',
    '',
  ];
  let redis = spawn('redis-server', args, { stdio: 'ignore' });
  await waitForPort(port);
  const bridge = await startBridge({
    storage: 'postgres+redis',
    configure: (c) => ({
      ...c,
      storage: { ...c.storage, redisUrl: `redis://127.0.0.1:${port}`, redisKeyPrefix: 'wob-fault:' },
    }),
  });
  try {
    const rp = await relyingParty(bridge);
    let restarted = false;
    const before: string[] = [];
    const run = await runLogins(rp, bridge, 100, 10, async (done) => {
      if (done === 40 && !restarted) {
        restarted = true;
        redis.kill('SIGTERM');
        await new Promise((resolve) => redis.once('exit', resolve));
        await new Promise((resolve) => setTimeout(resolve, 1000));
        redis = spawn('redis-server', args, { stdio: 'ignore' });
      }
    });
    before.push(...run.refreshTokens.slice(0, 40));
    // Everything issued before the restart still works after it: each refresh token refreshes.
    let dead = 0;
    for (const token of before) await withRetry(() => oidc.refreshTokenGrant(rp, token)).catch(() => dead++);
    const result = outcome('redis-restart', 100, run, [
      `Redis stopped for ~1 s after 40 logins`,
      `refresh tokens from before the restart that no longer work: ${dead} of ${before.length}`,
    ]);
    result.lost += dead;
    return result;
  } finally {
    await bridge.close();
    redis.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.end();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

function outcome(
  scenario: string,
  logins: number,
  run: { completed: number; failures: string[]; retried: number; rescans: string[] },
  notes: string[],
): Outcome {
  const unique = [...new Set(run.failures)].slice(0, 5);
  return {
    scenario,
    logins,
    completed: run.completed,
    lost: logins - run.completed,
    retriedRequests: run.retried,
    notes: [
      ...notes,
      `logins the person had to scan again (a step died with an instance): ${run.rescans.length}`,
      ...[...new Set(run.rescans)].slice(0, 3).map((f) => `rescanned after: ${f}`),
      ...unique.map((f) => `failure: ${f}`),
    ],
  };
}

const SCENARIOS: Record<string, () => Promise<Outcome>> = { concurrent, kill, 'redis-restart': redisRestart };
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SCENARIOS);
let lostAny = false;
for (const name of chosen) {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new Error(`unknown scenario ${name}: ${Object.keys(SCENARIOS).join(', ')}`);
  const started = performance.now();
  const result = await scenario();
  lostAny ||= result.lost > 0;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${result.scenario.padEnd(14)} logins ${result.completed}/${result.logins}  lost ${result.lost}  reloaded requests ${result.retriedRequests}  (${seconds} s)`,
  );
  for (const note of result.notes) console.log(`  ${note}`);
}
process.exit(lostAny ? 1 : 0);
