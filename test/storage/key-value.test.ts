import { createRedisKeyValueStore } from '../../src/storage/redis/key-value.ts';
import { createSqlKeyValueStore, type SqlKeyValueStore } from '../../src/storage/sql/key-value.ts';
import { createSqliteKeyValueStore } from '../../src/storage/sqlite/key-value.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { openPgliteBackend, openPostgresBackend, openRedisBackend, openSqliteBackend } from './backends.ts';
import { createFakeClock } from './fake-clock.ts';
import { describeKeyValueConformance, type KeyValueHarness } from './key-value-conformance.ts';
import { advanceRedisTime } from './redis-time.ts';

const [postgres, redis] = await Promise.all([serviceAvailable('postgres'), serviceAvailable('redis')]);

describeKeyValueConformance(
  'Redis',
  async () => {
    const backend = await openRedisBackend();
    return {
      kv: createRedisKeyValueStore(backend.redis, { prefix: backend.prefix }),
      advance: (seconds) => advanceRedisTime(backend.redis, backend.prefix, seconds),
      close: () => backend.close(),
    };
  },
  { skip: !redis },
);

describeKeyValueConformance(
  'SQL on PostgreSQL',
  () =>
    clockedHarness(openPostgresBackend(), (backend, options) => createSqlKeyValueStore(backend.db, options)),
  { skip: !postgres },
);

describeKeyValueConformance('SQL on PGlite', () =>
  clockedHarness(openPgliteBackend(), (backend, options) => createSqlKeyValueStore(backend.db, options)),
);

describeKeyValueConformance('SQLite (embedded)', () =>
  clockedHarness(openSqliteBackend(), (backend, options) =>
    createSqliteKeyValueStore(backend.database, backend.writes, options),
  ),
);

/** A store on a backend of its own, on a fake clock, without the sweeper's timer. */
async function clockedHarness<B extends { close(): Promise<void> }>(
  opening: Promise<B>,
  create: (backend: B, options: { now: () => Date; sweepIntervalMs: number }) => SqlKeyValueStore,
): Promise<KeyValueHarness> {
  const backend = await opening;
  const clock = createFakeClock();
  const kv = create(backend, { now: clock.now, sweepIntervalMs: 0 });
  return {
    kv,
    async advance(seconds) {
      clock.advance(seconds);
    },
    async close() {
      kv.close();
      await backend.close();
    },
  };
}
