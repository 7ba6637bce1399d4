import type { Kysely } from 'kysely';
import { request } from 'undici';
import { outboundDispatcher } from '../http/outbound.ts';
import { errorClass } from '../observability/causes.ts';
import type { Logger } from '../observability/logger.ts';
import { databaseNowPlus, isSqlite } from '../storage/dialect.ts';
import type { Database } from '../storage/schema.ts';

/**
 * How long to wait before each retry of a failed delivery; after the last retry fails the event is
 * given up. 30 s, 2 min, 10 min, 1 h, 6 h, 16 h: seven attempts over about 24 hours.
 */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [
  30_000, 120_000, 600_000, 3_600_000, 21_600_000, 57_600_000,
];

export interface EventDeliveryOptions {
  db: Kysely<Database>;
  logger: Logger;
  /** Delays before each retry, milliseconds (tests use a few ms). Default DEFAULT_RETRY_DELAYS_MS. */
  retryDelaysMs?: readonly number[];
  /**
   * How often this instance looks for due rows (retries, rows other instances enqueued), ms;
   * 0: only when kicked. Default 5 s.
   */
  pollIntervalMs?: number;
  /** Rows claimed at a time. Default 20. */
  batchSize?: number;
  /**
   * How long a claimed row stays hidden from every loop while its POST runs, ms; a loop that dies
   * mid-delivery leaves the row to be retried after it. Longer than timeoutMs. Default 60 s.
   */
  leaseMs?: number;
  /** Per-POST timeout (headers and body), ms. Default 5 s. */
  timeoutMs?: number;
  /** Told of each event given up after its last attempt (the metrics' count). */
  onGivenUp?: (clientId: string) => void;
}

export interface EventDelivery {
  /** Delivers due rows now (after an enqueue), or once more after the pass under way. */
  kick(): void;
  /** One full pass now, serialised with the loop's own: for a CLI that exits right after. */
  deliverDue(): Promise<void>;
  /** Stops polling and waits for the pass under way (its POSTs are bounded by timeoutMs). */
  stop(): Promise<void>;
}

interface ClaimedDelivery {
  id: string;
  client_id: string;
  event_type: string;
  events_uri: string;
  token: string;
  attempts: number;
}

/**
 * The delivery loop of the account-event outbox (account_event_deliveries), run by every instance.
 * A pass claims due rows in one UPDATE over SELECT ... FOR UPDATE SKIP LOCKED that counts the
 * attempt and pushes next_attempt_at forward by a lease, so no two loops (on any instance) hold one
 * row; then it POSTs each token (RFC 8935: application/secevent+jwt, any 2xx is delivered). A
 * delivered row is deleted; a failed one is due again after the next retry delay, or, past the
 * last, deleted and logged as given up. Logs name the client, type, attempt and a short reason:
 * never the token or the subject.
 */
export function startEventDelivery(options: EventDeliveryOptions): EventDelivery {
  const settings = {
    retryDelaysMs: options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS,
    batchSize: options.batchSize ?? 20,
    leaseMs: options.leaseMs ?? 60_000,
    timeoutMs: options.timeoutMs ?? 5_000,
    onGivenUp: options.onGivenUp,
  };
  const { db, logger } = options;
  let current: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const drain = async () => {
    for (;;) {
      const claimed = await claimDue(db, settings.batchSize, settings.leaseMs);
      await Promise.all(claimed.map((row) => deliverOne(db, logger, settings, row)));
      if (claimed.length < settings.batchSize) return;
    }
  };
  const run = async () => {
    do {
      again = false;
      await drain().catch((err) =>
        logger.warn({ reason: errorClass(err) }, 'account event delivery pass failed'),
      );
    } while (again && !stopped);
  };
  const start = () => {
    current = run().finally(() => {
      current = undefined;
    });
    return current;
  };
  const kick = () => {
    if (stopped) return;
    if (current) again = true;
    else void start();
  };

  const interval = options.pollIntervalMs ?? 5_000;
  const timer = interval > 0 ? setInterval(kick, interval) : undefined;
  timer?.unref();
  return {
    kick,
    async deliverDue() {
      while (current) await current;
      await start();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
    },
  };
}

async function claimDue(db: Kysely<Database>, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  return db
    .updateTable('account_event_deliveries')
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      next_attempt_at: databaseNowPlus(db, leaseMs),
    }))
    .where('id', 'in', (eb) =>
      eb
        .selectFrom('account_event_deliveries')
        .select('id')
        .where('next_attempt_at', '<=', databaseNowPlus(db, 0))
        .orderBy('next_attempt_at')
        .limit(limit)
        // SQLite has one connection, and this one statement runs alone on it.
        .$if(!isSqlite(db), (qb) => qb.forUpdate().skipLocked()),
    )
    .returning(['id', 'client_id', 'event_type', 'events_uri', 'token', 'attempts'])
    .execute();
}

async function deliverOne(
  db: Kysely<Database>,
  logger: Logger,
  settings: {
    retryDelaysMs: readonly number[];
    timeoutMs: number;
    onGivenUp: ((clientId: string) => void) | undefined;
  },
  row: ClaimedDelivery,
): Promise<void> {
  const fields = { clientId: row.client_id, type: row.event_type, attempt: row.attempts };
  const failure = await post(row.events_uri, row.token, settings.timeoutMs);
  if (failure === undefined) {
    await db.deleteFrom('account_event_deliveries').where('id', '=', row.id).execute();
    logger.info(fields, 'account event delivered');
    return;
  }
  const delayMs = settings.retryDelaysMs[row.attempts - 1];
  if (delayMs === undefined) {
    await db.deleteFrom('account_event_deliveries').where('id', '=', row.id).execute();
    logger.error({ ...fields, reason: failure }, 'account event given up after its last attempt');
    settings.onGivenUp?.(row.client_id);
    return;
  }
  await db
    .updateTable('account_event_deliveries')
    .set({
      next_attempt_at: databaseNowPlus(db, delayMs),
      last_error: failure,
    })
    .where('id', '=', row.id)
    .execute();
  logger.warn({ ...fields, reason: failure, retryInMs: delayMs }, 'account event not delivered: will retry');
}

/** POSTs the token; undefined when the receiver took it (2xx), else a short reason. */
async function post(uri: string, token: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const response = await request(uri, {
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
      body: token,
      dispatcher: outboundDispatcher(),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // Bounds the connection too: a receiver that never accepts cannot hold a pass (or a shutdown).
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body.dump();
    return response.statusCode >= 200 && response.statusCode < 300
      ? undefined
      : `status ${response.statusCode}`;
  } catch (err) {
    return errorClass(err);
  }
}

/** Events waiting in the outbox, on every instance's account: due, leased or waiting for a retry. */
export async function pendingEvents(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('account_event_deliveries')
    .select((eb) => eb.fn.countAll<string | number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
