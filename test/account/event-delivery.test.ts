import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type EventDelivery, startEventDelivery } from '../../src/accounts/event-delivery.ts';
import { createWebhookSender, type WebhookSender } from '../../src/accounts/webhooks.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { migrateToLatest } from '../../src/storage/migrate.ts';
import { createPostgresDatabase } from '../../src/storage/postgres.ts';
import type { Database } from '../../src/storage/schema.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { openPostgresBackend, openSqliteAccountsBackend, type SqlBackend } from '../storage/backends.ts';

const JWKS = {
  keys: [
    {
      ...(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as Record<
        string,
        unknown
      >),
      kid: 'test-key',
    },
  ],
};

/** A relying party's account_events_uri: answers `status()` and records each jti it received. */
async function receiver(status: () => number = () => 202, port = 0) {
  const jtis: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const payload = JSON.parse(Buffer.from(body.split('.')[1] ?? '', 'base64url').toString());
      jtis.push(payload.jti);
      res.writeHead(status()).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    jtis,
    port: actual,
    url: `http://127.0.0.1:${actual}/events`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function capturedLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

/** Enqueues one event in a transaction of its own, as the change it announces would, then kicks. */
function enqueuing(db: Kysely<Database>, sender: WebhookSender) {
  return async (
    ...event: Parameters<WebhookSender['enqueue']> extends [unknown, ...infer Rest] ? Rest : never
  ) => {
    await db.transaction().execute((trx) => sender.enqueue(trx, ...event));
    sender.enqueued();
  };
}

const backends: Array<[string, () => Promise<SqlBackend>, boolean]> = [
  ['SQLite', openSqliteAccountsBackend, true],
  ['PostgreSQL', openPostgresBackend, await serviceAvailable('postgres')],
];

for (const [name, open, available] of backends) {
  describe.skipIf(!available)(`account event delivery from the outbox (${name})`, () => {
    let backend: SqlBackend;
    const stops: Array<() => Promise<void>> = [];
    beforeAll(async () => {
      backend = await open();
    });
    afterEach(async () => {
      for (const stop of stops.splice(0).reverse()) await stop();
      await backend.db.deleteFrom('account_event_deliveries').execute();
    });
    afterAll(async () => backend?.close());

    const outbox = () =>
      backend.db.selectFrom('account_event_deliveries').select(['attempts', 'last_error']).execute();

    /** A sender and a fast delivery loop on this database, stopped after the test. */
    const wire = (retryDelaysMs: number[], logger = capturedLogger().logger) => {
      const delivery: EventDelivery = startEventDelivery({
        db: backend.db,
        logger,
        retryDelaysMs,
        pollIntervalMs: 10,
      });
      stops.push(() => delivery.stop());
      const sender = createWebhookSender({
        issuer: 'https://id.example.test',
        jwks: JWKS,
        logger,
        now: () => new Date(),
        onEnqueued: delivery.kick,
      });
      return enqueuing(backend.db, sender);
    };

    test('a receiver that is down gets the event once it comes up', async () => {
      const probe = await receiver();
      await probe.close();
      const send = wire(Array.from({ length: 40 }, () => 50));
      await send('deleted', 'union-down', [{ clientId: 'rp-down', eventsUri: probe.url }]);
      await expect
        .poll(outbox)
        .toEqual([expect.objectContaining({ attempts: expect.any(Number), last_error: 'ECONNREFUSED' })]);

      const up = await receiver(() => 204, probe.port);
      stops.push(up.close);
      await expect.poll(() => up.jtis).toHaveLength(1);
      await expect.poll(outbox).toEqual([]);
    });

    test('gives up after the last attempt: the row goes and an error names the client and type', async () => {
      const refusing = await receiver(() => 500);
      stops.push(refusing.close);
      const { logger, lines } = capturedLogger();
      const send = wire([5, 5], logger);
      await send(
        'identitiesChanged',
        'union-give-up',
        [{ clientId: 'rp-refusing', eventsUri: refusing.url }],
        {
          appids: [],
        },
      );
      await expect.poll(() => refusing.jtis).toHaveLength(3);
      await expect.poll(outbox).toEqual([]);
      expect(new Set(refusing.jtis).size).toBe(1);
      const given = lines.map((line) => JSON.parse(line)).find((l) => l.msg.includes('given up'));
      expect(given).toMatchObject({
        level: 'error',
        clientId: 'rp-refusing',
        type: 'identitiesChanged',
        attempt: 3,
        reason: 'status 500',
      });
      const all = lines.join('');
      expect(all).not.toContain('union-give-up');
      expect(all).not.toContain('eyJ');
    });
  });
}

const postgres = await serviceAvailable('postgres');

describe.skipIf(!postgres)('account event delivery across instances (PostgreSQL)', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  // Two instances: a connection pool each, on one database.
  let instances: Kysely<Database>[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    instances = [createPostgresDatabase(database.url), createPostgresDatabase(database.url)];
    await migrateToLatest(instances[0] as Kysely<Database>);
  });
  afterAll(async () => {
    await Promise.all(instances.map((db) => db.destroy()));
    await database?.drop();
  });

  test("two instances' loops never deliver one row twice", async () => {
    const counting = await receiver(() => 204);
    const [db] = instances as [Kysely<Database>];
    const { logger } = capturedLogger();
    const loops = instances.map((instance) =>
      startEventDelivery({ db: instance, logger, pollIntervalMs: 5, batchSize: 7, retryDelaysMs: [10] }),
    );
    try {
      const send = enqueuing(
        db,
        createWebhookSender({ issuer: 'https://id.example.test', jwks: JWKS, logger, now: () => new Date() }),
      );
      const clients = Array.from({ length: 25 }, (_, i) => ({
        clientId: `rp-${i}`,
        eventsUri: counting.url,
      }));
      await Promise.all(Array.from({ length: 8 }, (_, i) => send('deleted', `union-${i}`, clients)));
      await expect.poll(() => counting.jtis.length, { timeout: 20_000 }).toBe(200);
      expect(new Set(counting.jtis).size).toBe(200);
      await expect.poll(() => db.selectFrom('account_event_deliveries').select('id').execute()).toEqual([]);
      expect(counting.jtis).toHaveLength(200);
    } finally {
      await Promise.all(loops.map((loop) => loop.stop()));
      await counting.close();
    }
  });
});
