import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { causes } from '../../src/observability/causes.ts';
import { connectRedis } from '../../src/storage/redis/connect.ts';
import { testRedisUrl } from '../helpers/redis.ts';
import { redisServerAvailable, startRedisSentinel } from '../helpers/redis-topologies.ts';

const PASSWORD = 'pa55-never-printed';

/** A loopback TCP server answering each chunk as `answer` says (nothing at all, by default). */
async function fakeRedis(
  answer?: (socket: Socket, chunk: Buffer) => void,
): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => answer?.(socket, chunk));
  });
  server.on('close', () => {
    for (const socket of sockets) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** Why connectRedis failed, as the start-up's one line says it (causes()). */
async function failure(url: string, startupTimeoutMs?: number): Promise<string> {
  const error = await connectRedis(url, startupTimeoutMs === undefined ? {} : { startupTimeoutMs }).then(
    (redis) => void redis.disconnect(),
    (rejection: unknown) => rejection,
  );
  if (error === undefined) throw new Error('connected');
  return causes(error);
}

// ioredis rejects a first connection that failed with "Connection is closed." whatever closed it: the
// reason is the connection's own error, as PostgreSQL's start-up errors give theirs.
describe('a Redis that cannot be used at start-up is reported with the reason', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });

  test('connection refused names the address', async () => {
    const { port, server } = await fakeRedis();
    // A port nobody listens on: the one the fake had, once it is closed.
    await new Promise((resolve) => server.close(resolve));
    const reason = await failure(`redis://:${PASSWORD}@127.0.0.1:${port}`);
    expect(reason).toBe(
      `cannot connect to Redis at redis://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`,
    );
  });

  // ioredis retries a cluster's nodes and a master's sentinels for as long as none answers.
  test.each([
    ['a cluster', 'redis+cluster'],
    ['a master through Sentinel', 'redis+sentinel'],
  ])('%s none of whose nodes answers fails the start-up within its budget, naming why', async (_, scheme) => {
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const { port, server } = await fakeRedis();
      await new Promise((resolve) => server.close(resolve));
      ports.push(port);
    }
    const hosts = ports.map((port) => `127.0.0.1:${port}`).join(',');
    const path = scheme === 'redis+sentinel' ? '/mymaster' : '';
    const started = performance.now();
    const reason = await failure(`${scheme}://:${PASSWORD}@${hosts}${path}`, 1000);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(reason).toMatch(/^cannot connect to Redis at .+: .+/);
    expect(reason).not.toContain(PASSWORD);
  });

  test('a server that accepts and never answers is a timeout, after how long', async () => {
    const { port, server } = await fakeRedis();
    servers.push(server);
    const reason = await failure(`redis://:${PASSWORD}@127.0.0.1:${port}`);
    expect(reason).toMatch(
      new RegExp(
        `^cannot connect to Redis at redis://127\\.0\\.0\\.1:${port}: timed out after \\d+ s: the server accepted the connection but did not answer`,
      ),
    );
    expect(reason).not.toContain(PASSWORD);
  });

  // Redis answers INFO while it loads its dataset after a restart, and ioredis's ready check waits
  // for the load to end: the start-up said the server "did not answer".
  test('a server still loading its dataset is said to be loading, with its estimate', async () => {
    const info = '# Persistence\r\nloading:1\r\nloading_eta_seconds:42\r\n';
    // One answer per command (a chunk may carry several: AUTH with ioredis's CLIENT SETINFO).
    const { port, server } = await fakeRedis((socket, chunk) => {
      for (const _ of chunk.toString().matchAll(/\*\d+\r\n\$/g))
        socket.write(`$${Buffer.byteLength(info)}\r\n${info}\r\n`);
    });
    servers.push(server);
    const reason = await failure(`redis://:${PASSWORD}@127.0.0.1:${port}`, 1500);
    expect(reason).toBe(
      `cannot connect to Redis at redis://127.0.0.1:${port}: Redis is still loading its dataset into memory (about 42 s more, by its estimate): start again once it has (a restart policy does)`,
    );
  });

  test("Redis's refusal of the password is said, never the password", async () => {
    const { port, server } = await fakeRedis((socket) =>
      socket.write('-WRONGPASS invalid username-password pair or user is disabled.\r\n'),
    );
    servers.push(server);
    const reason = await failure(`redis://:${PASSWORD}@127.0.0.1:${port}`);
    expect(reason).toBe(
      `cannot connect to Redis at redis://127.0.0.1:${port}: WRONGPASS invalid username-password pair or user is disabled.`,
    );
  });
});

// ioredis sends the URL's SELECT once connected but only emits its error as an event and carries on
// in db 0: the start-up said "Redis connected" and every key landed in db 0 (an operator's review).
// A default Redis has 16 databases, 0 to 15.
describe('a database index the Redis lacks fails the start-up', () => {
  test('on one server', async () => {
    const url = `${testRedisUrl()}/99`;
    expect(await failure(url)).toBe(`cannot connect to Redis at ${url}: ERR DB index is out of range`);
  });

  test.skipIf(!redisServerAvailable())(
    'on a master found through Sentinel',
    async () => {
      const sentinel = await startRedisSentinel();
      try {
        expect(await failure(`${sentinel.url}/99`)).toBe(
          `cannot connect to Redis at ${sentinel.url}/99: ERR DB index is out of range`,
        );
      } finally {
        await sentinel.stop();
      }
    },
    30_000,
  );

  test('an index the server has is used', async () => {
    const redis = await connectRedis(`${testRedisUrl()}/15`);
    try {
      expect(await redis.client('INFO')).toMatch(/ db=15 /);
    } finally {
      redis.disconnect();
    }
  });
});
