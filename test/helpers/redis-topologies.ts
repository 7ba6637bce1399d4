import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/**
 * Private Redis servers for the topology tests: a Redis Cluster of three masters, and a master
 * with a replica watched by a Sentinel. Each runs from the machine's `redis-server` (REDIS_SERVER
 * to name another) on free loopback ports, keeps nothing on disk, and is killed by `stop()`.
 */
const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
const SLOTS = 16_384;

/**
 * Whether `redis-server` runs here. Missing outside CI: false, with a message saying which suites
 * are skipped; missing with env CI set: throws, so a CI run never passes by skipping.
 */
export function redisServerAvailable(): boolean {
  const found = spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' });
  if (found.status === 0) return true;
  const hint = `${REDIS_SERVER} does not run here (set REDIS_SERVER to its path)`;
  if (process.env.CI) throw new Error(`${hint}; CI is set, so the Redis Cluster and Sentinel suites fail`);
  console.warn(`${hint}: skipping the Redis Cluster and Sentinel suites`);
  return false;
}

export interface RedisCluster {
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const group = await ServerGroup.create('wob-cluster-');
  try {
    const ports: number[] = [];
    for (let i = 0; i < masters; i++) {
      // A cluster node also listens on port + 10000 (its bus), which must be free too.
      const port = await freePort((p) => p + 10_000 < 65_536);
      await group.start(port, [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '2000',
      ]);
      ports.push(port);
    }
    await formCluster(ports);
    const hosts = ports.map((port) => `127.0.0.1:${port}`).join(',');
    return { url: `redis+cluster://${hosts}`, ports, stop: () => group.stop() };
  } catch (error) {
    await group.stop();
    throw error;
  }
}

/** Slots split evenly across the nodes, every node introduced to the first, then wait for "ok". */
async function formCluster(ports: number[]): Promise<void> {
  const clients = ports.map((port) => new Redis(port, '127.0.0.1', { lazyConnect: true }));
  // Readiness is awaited explicitly; refused connections meanwhile are expected, not news.
  for (const client of clients) client.on('error', ignore);
  try {
    const share = Math.ceil(SLOTS / ports.length);
    await Promise.all(
      clients.map((client, i) =>
        client.call('CLUSTER', 'ADDSLOTSRANGE', i * share, Math.min(SLOTS, (i + 1) * share) - 1),
      ),
    );
    const [first] = clients as [Redis];
    for (const port of ports.slice(1)) await first.call('CLUSTER', 'MEET', '127.0.0.1', port);
    await until(
      'the cluster to form',
      tolerant(async () => {
        const infos = await Promise.all(clients.map((client) => client.call('CLUSTER', 'INFO')));
        return infos.every((info) => String(info).includes('cluster_state:ok'));
      }),
    );
  } finally {
    for (const client of clients) client.disconnect();
  }
}

export interface RedisSentinel {
  /** redis+sentinel:// URL of the sentinel, naming the master. */
  url: string;
  masterName: string;
  /** The port of the server that is master now. */
  masterPort(): Promise<number>;
  /** Has the Sentinel promote the replica, and waits until it reports the new master. */
  failover(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisSentinel(): Promise<RedisSentinel> {
  const group = await ServerGroup.create('wob-sentinel-');
  const masterName = 'wobtest';
  try {
    const master = await freePort();
    await group.start(master, []);
    const replica = await freePort();
    await group.start(replica, ['--replicaof', '127.0.0.1', String(master)]);
    const port = await freePort();
    // Sentinel rewrites its configuration file as it learns the topology: one of its own.
    const conf = join(group.dir, 'sentinel.conf');
    await writeFile(
      conf,
      [
        `sentinel monitor ${masterName} 127.0.0.1 ${master} 1`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        '',
      ].join('\n'),
    );
    await group.start(port, ['--sentinel'], conf);
    const sentinel = new Redis(port, '127.0.0.1', { lazyConnect: true });
    sentinel.on('error', ignore);
    group.onStop(async () => sentinel.disconnect());
    const masterPort = async () => {
      const [, found] = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as string[];
      return Number(found);
    };
    // Failover needs a replica the Sentinel knows, in sync with the master.
    await until(
      'the sentinel to see the replica',
      tolerant(async () => {
        const replicas = (await sentinel.call('SENTINEL', 'REPLICAS', masterName)) as string[][];
        return replicas.some((fields) => fields.join(' ').includes('master-link-status ok'));
      }),
    );
    return {
      url: `redis+sentinel://127.0.0.1:${port}/${masterName}`,
      masterName,
      masterPort,
      async failover() {
        const before = await masterPort();
        await sentinel.call('SENTINEL', 'FAILOVER', masterName);
        await until(
          'the failover',
          tolerant(async () => (await masterPort()) !== before),
        );
      },
      stop: () => group.stop(),
    };
  } catch (error) {
    await group.stop();
    throw error;
  }
}

/** Servers in one temporary directory, stopped together. */
class ServerGroup {
  readonly dir: string;
  readonly #processes: ChildProcess[] = [];
  readonly #onStop: (() => Promise<void>)[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async create(prefix: string): Promise<ServerGroup> {
    return new ServerGroup(await mkdtemp(join(tmpdir(), prefix)));
  }

  /** Starts a server on `port` (from `conf` when given) and waits until it answers PING. */
  async start(port: number, args: string[], conf?: string): Promise<void> {
    const child = spawn(
      REDIS_SERVER,
      [
        ...(conf ? [conf] : []),
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        '--logfile',
        join(this.dir, `redis-${port}.log`),
        ...args,
      ],
      { stdio: 'ignore' },
    );
    this.#processes.push(child);
    const client = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null });
    client.on('error', ignore);
    try {
      await until(`redis-server on port ${port}`, async () => {
        if (child.exitCode !== null)
          throw new Error(`redis-server on port ${port} exited (${child.exitCode})`);
        try {
          if (client.status !== 'ready') await client.connect();
          return (await client.ping()) === 'PONG';
        } catch (error) {
          if ((error as Error).message.includes('exited')) throw error;
          client.disconnect();
          return false;
        }
      });
    } finally {
      client.disconnect();
    }
  }

  onStop(fn: () => Promise<void>): void {
    this.#onStop.push(fn);
  }

  async stop(): Promise<void> {
    for (const fn of this.#onStop) await fn().catch(() => {});
    await Promise.all(
      this.#processes.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** `check`, with a failure (a server not up yet) counted as "not yet". */
const tolerant = (check: () => Promise<boolean>) => () => check().catch(() => false);

/** A free loopback port (satisfying `also`, e.g. room for a cluster bus port above it). */
async function freePort(also: (port: number) => boolean = () => true): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port && also(port)) return port;
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** For the helpers' own clients, which watch for readiness themselves (ioredis prints unheard errors). */
function ignore(): void {}
