import { createRedisOidcAdapterFactory } from '../../src/storage/redis/oidc-adapter.ts';
import { createSqlOidcAdapter } from '../../src/storage/sql/oidc-adapter.ts';
import { createSqliteOidcAdapter } from '../../src/storage/sqlite/oidc-adapter.ts';
import { serviceAvailable } from '../helpers/services.ts';
import {
  openPgliteBackend,
  openPostgresBackend,
  openRedisBackend,
  openSqliteBackend,
  type SqlBackend,
} from './backends.ts';
import { createFakeClock } from './fake-clock.ts';
import { describeOidcAdapterConformance, type OidcAdapterHarness } from './oidc-adapter-conformance.ts';
import { advanceRedisTime } from './redis-time.ts';

const [postgres, redis] = await Promise.all([serviceAvailable('postgres'), serviceAvailable('redis')]);

describeOidcAdapterConformance(
  'Redis',
  async () => {
    const backend = await openRedisBackend();
    const clock = createFakeClock();
    return {
      factory: createRedisOidcAdapterFactory(backend.redis, { prefix: backend.prefix, now: clock.now }),
      nowSeconds: () => Math.floor(clock.now().getTime() / 1000),
      async advance(seconds) {
        clock.advance(seconds);
        await advanceRedisTime(backend.redis, backend.prefix, seconds);
      },
      close: () => backend.close(),
    };
  },
  { skip: !redis },
);

describeOidcAdapterConformance('SQL on PostgreSQL', () => sqlHarness(openPostgresBackend()), {
  skip: !postgres,
});

describeOidcAdapterConformance('SQL on PGlite', () => sqlHarness(openPgliteBackend()));

describeOidcAdapterConformance('SQLite (embedded)', async () => {
  const backend = await openSqliteBackend();
  const clock = createFakeClock();
  const adapter = createSqliteOidcAdapter(backend.database, { now: clock.now, sweepIntervalMs: 0 });
  return {
    factory: adapter.factory,
    nowSeconds: () => Math.floor(clock.now().getTime() / 1000),
    async advance(seconds) {
      clock.advance(seconds);
    },
    async close() {
      adapter.close();
      await backend.close();
    },
  };
});

async function sqlHarness(opening: Promise<SqlBackend>): Promise<OidcAdapterHarness> {
  const backend = await opening;
  const clock = createFakeClock();
  // No timer: the conformance suite only checks that expired rows are invisible.
  const adapter = createSqlOidcAdapter(backend.db, { now: clock.now, sweepIntervalMs: 0 });
  return {
    factory: adapter.factory,
    nowSeconds: () => Math.floor(clock.now().getTime() / 1000),
    async advance(seconds) {
      clock.advance(seconds);
    },
    async close() {
      adapter.close();
      await backend.close();
    },
  };
}
