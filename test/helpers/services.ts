import { Redis } from 'ioredis';
import pg from 'pg';
import { describeUrl } from '../../src/storage/describe-url.ts';
import { testDatabaseAdminUrl } from './postgres.ts';
import { testRedisUrl } from './redis.ts';

export type TestService = 'postgres' | 'redis';

const PROBE_TIMEOUT_MS = 3_000;

/**
 * Whether a service the suite needs answers. Unreachable outside CI: false, with a message
 * saying which suites are skipped and how to point them at a server. Unreachable with env
 * CI set: throws, so a CI run never passes by skipping. Use at the top of a test file:
 *
 *   const postgres = await serviceAvailable('postgres');
 *   describe.skipIf(!postgres)('...', () => { ... });
 */
export async function serviceAvailable(service: TestService): Promise<boolean> {
  const reachable = service === 'postgres' ? await probePostgres() : await probeRedis();
  if (reachable) return true;
  const hint =
    service === 'postgres'
      ? `PostgreSQL is unreachable at ${describeUrl(testDatabaseAdminUrl())} (set TEST_DATABASE_URL)`
      : `Redis is unreachable at ${describeUrl(testRedisUrl())} (set TEST_REDIS_URL)`;
  if (process.env.CI) throw new Error(`${hint}; CI is set, so suites that need it fail instead of skipping`);
  console.warn(`${hint}: skipping the suites that need it`);
  return false;
}

/** Both at once, for suites that need both. */
export async function servicesAvailable(): Promise<{ postgres: boolean; redis: boolean }> {
  const [postgres, redis] = await Promise.all([serviceAvailable('postgres'), serviceAvailable('redis')]);
  return { postgres, redis };
}

async function probePostgres(): Promise<boolean> {
  const client = new pg.Client({
    connectionString: testDatabaseAdminUrl(),
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function probeRedis(): Promise<boolean> {
  const redis = new Redis(testRedisUrl(), {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}
