import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
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
    const outcome = await work().then(
      () => 'done',
      () => 'failed',
    );
    return { outcome, ms: performance.now() - started };
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
    } finally {
      relay.unhang();
      await db.destroy();
    }
  });
});
