import { createRedisKeyValueStore } from '../../src/storage/redis/key-value.ts';
import { createSqlKeyValueStore } from '../../src/storage/sql/key-value.ts';
import { createSqliteKeyValueStore } from '../../src/storage/sqlite/key-value.ts';
import { serviceAvailable } from '../helpers/services.ts';
import {
  openPgliteBackend,
  openPostgresBackend,
  openRedisBackend,
  openSqliteBackend,
  type SqlBackend,
} from './backends.ts';
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

describeKeyValueConformance('SQL on PostgreSQL', () => sqlHarness(openPostgresBackend()), {
  skip: !postgres,
});

describeKeyValueConformance('SQL on PGlite', () => sqlHarness(openPgliteBackend()));

describeKeyValueConformance('SQLite (embedded)', async () => {
  const backend = await openSqliteBackend();
  const clock = createFakeClock();
  const kv = createSqliteKeyValueStore(backend.database, { now: clock.now, sweepIntervalMs: 0 });
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
});

async function sqlHarness(opening: Promise<SqlBackend>): Promise<KeyValueHarness> {
  const backend = await opening;
  const clock = createFakeClock();
  const kv = createSqlKeyValueStore(backend.db, { now: clock.now, sweepIntervalMs: 0 });
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
