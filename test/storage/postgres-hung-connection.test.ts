import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isStoreOutage } from '../../src/storage/outage.ts';
import { createPostgresDatabase } from '../../src/storage/postgres.ts';
import { testDatabaseAdminUrl } from '../helpers/postgres.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { startTcpRelay, type TcpRelay } from '../production/tcp-relay.ts';

const available = await serviceAvailable('postgres');

/** The statement timeout of these tests: short, so that waiting out two of them shows. */
const TIMEOUT_MS = 400;

/**
 * A pooled PostgreSQL connection that stops answering while new ones work (src/storage/postgres.ts,
 * ClosingOnTimeout): the statement waiting on it fails at the timeout, and nothing waits on it after.
 */
describe.skipIf(!available)('a PostgreSQL connection that stops answering', () => {
  let relay: TcpRelay;
  beforeAll(async () => {
    const shared = new URL(testDatabaseAdminUrl());
    relay = await startTcpRelay({ host: shared.hostname, port: Number(shared.port || 5432) });
  });
  afterAll(async () => {
    await relay?.close();
  });

  function database() {
    const url = new URL(testDatabaseAdminUrl());
    url.hostname = '127.0.0.1';
    url.port = String(relay.port);
    return createPostgresDatabase(url.href, { maxConnections: 1, queryTimeoutMs: TIMEOUT_MS });
  }

  const elapsed = async (work: () => Promise<unknown>) => {
    const started = performance.now();
    let error: unknown;
    const outcome = await work().then(
      () => 'done',
      (failure: unknown) => {
        error = failure;
        return 'failed';
      },
    );
    return { outcome, ms: performance.now() - started, error };
  };

  test('the next statement gets a working connection instead of waiting behind the hung one', async () => {
    const db = database();
    try {
      await sql`select 1`.execute(db);
      relay.hangOpenConnections();
      expect((await elapsed(() => sql`select 1`.execute(db))).outcome).toBe('failed');
      const next = await elapsed(() => sql`select 1`.execute(db));
      expect(next.outcome).toBe('done');
      expect(next.ms).toBeLessThan(TIMEOUT_MS);
    } finally {
      relay.unhang();
      await db.destroy();
    }
  });

  test("a transaction's statement that times out fails it within one timeout, not two (the ROLLBACK does not wait)", async () => {
    const db = database();
    try {
      let hungAt = 0;
      const failed = await elapsed(() =>
        db.transaction().execute(async (trx) => {
          await sql`select 1`.execute(trx);
          // Begun, then the connection stops answering: this statement times out, then the ROLLBACK.
          relay.hangOpenConnections();
          hungAt = performance.now();
          await sql`select 1`.execute(trx);
        }),
      );
      failed.ms = performance.now() - hungAt;
      expect(failed.outcome).toBe('failed');
      expect(failed.ms).toBeLessThan(2 * TIMEOUT_MS);
      // Told as what it is, an outage (Kysely throws the ROLLBACK's error, on the closed connection).
      expect(isStoreOutage(failed.error)).toBe(true);
    } finally {
      relay.unhang();
      await db.destroy();
    }
  });

  test('a statement waiting on a lock is cancelled by the server: an outage, and no backend is left waiting behind it', async () => {
    const url = new URL(testDatabaseAdminUrl());
    const table = `lock_${randomUUID().replace(/-/g, '')}`;
    const holder = new pg.Client({ connectionString: url.href });
    await holder.connect();
    const db = database();
    try {
      await holder.query(`create table ${table} (id int)`);
      await holder.query('begin');
      await holder.query(`lock table ${table} in access exclusive mode`);
      for (let round = 0; round < 4; round++) {
        const [first, second] = await Promise.all([
          elapsed(() => sql`select count(*) from ${sql.table(table)}`.execute(db)),
          elapsed(() => sql`select count(*) from ${sql.table(table)}`.execute(db)),
        ]);
        expect(first.outcome).toBe('failed');
        expect(second.outcome).toBe('failed');
        expect(isStoreOutage(first.error)).toBe(true);
      }
      // Each statement was ended where it waited: none of this test's stays behind the lock.
      const { rows } = await holder.query(
        "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like $1",
        [`%${table}%`],
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await holder.query(`drop table if exists ${table}`).catch(() => undefined);
      await holder.end();
      await db.destroy();
    }
  });
});
