import { createRedisOidcAdapterFactory } from '../../src/storage/redis/oidc-adapter.ts';
import { createSqlOidcAdapter, type SqlOidcAdapter } from '../../src/storage/sql/oidc-adapter.ts';
import { createSqliteOidcAdapter } from '../../src/storage/sqlite/oidc-adapter.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { openPgliteBackend, openPostgresBackend, openRedisBackend, openSqliteBackend } from './backends.ts';
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

describeOidcAdapterConformance(
  'SQL on PostgreSQL',
  () =>
    clockedHarness(openPostgresBackend(), (backend, options) => createSqlOidcAdapter(backend.db, options)),
  { skip: !postgres },
);

describeOidcAdapterConformance('SQL on PGlite', () =>
  clockedHarness(openPgliteBackend(), (backend, options) => createSqlOidcAdapter(backend.db, options)),
);

describeOidcAdapterConformance('SQLite (embedded)', () =>
  clockedHarness(openSqliteBackend(), (backend, options) =>
    createSqliteOidcAdapter(backend.database, backend.writes, options),
  ),
);

/** An adapter on a backend of its own, on a fake clock. */
async function clockedHarness<B extends { close(): Promise<void> }>(
  opening: Promise<B>,
  create: (backend: B, options: { now: () => Date; sweepIntervalMs: number }) => SqlOidcAdapter,
): Promise<OidcAdapterHarness> {
  const backend = await opening;
  const clock = createFakeClock();
  // No timer: the conformance suite only checks that expired rows are invisible.
  const adapter = create(backend, { now: clock.now, sweepIntervalMs: 0 });
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
