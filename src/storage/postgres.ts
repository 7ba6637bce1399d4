import { AsyncResource } from 'node:async_hooks';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.ts';

export interface PostgresOptions {
  /** Pool size; pg's default is 10. */
  maxConnections?: number;
  /**
   * An idle pooled connection failed (server restart, network). pg would otherwise crash
   * the process with an unhandled 'error' event; the pool replaces the connection itself.
   */
  onIdleError?: (error: Error) => void;
  /**
   * A statement the server has not answered within this many milliseconds fails (pg's
   * query_timeout), so that a hung server fails the requests waiting on it instead of holding them
   * as long as it hangs. None by default: migrations take what they take.
   */
  queryTimeoutMs?: number;
}

/** The server's statements: short lookups and writes, a sweep of expired rows at most. */
export const QUERY_TIMEOUT_MS = 10_000;

/**
 * A pg client that closes its connection once a statement has timed out (query_timeout). pg fails
 * the statement but keeps the connection, so what came after it on that connection waited behind
 * it, each for a timeout of its own: a transaction's ROLLBACK (a hung server cost a request twice
 * the timeout), and, the client back in the pool, every later request handed it, for as long as the
 * connection lived: forever, for one the network had silently dropped (an outside review's fault
 * injection). Closed, the statements queued behind it fail at once and the pool opens a new one.
 */
class ClosingOnTimeout extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's query has a dozen overloads; this passes them through
  override query(...args: any[]): any {
    // biome-ignore lint/suspicious/noExplicitAny: as above
    const result = (super.query as (...a: any[]) => unknown)(...args);
    if (result instanceof Promise) result.catch((error: unknown) => this.closeIfTimedOut(error));
    return result;
  }

  private closeIfTimedOut(error: unknown): void {
    if (!(error instanceof Error) || error.message !== 'Query read timeout') return;
    // end() drops the socket at once when a statement is still unanswered, and marks the client as
    // ending before the pool takes it back (this runs first: it was attached first), so the pool
    // discards it rather than handing it out again.
    this.end().catch(() => undefined);
  }
}

/**
 * The client's wait (query_timeout), and the server's own limit a little under it (statement_timeout,
 * sent when a connection opens): a server that is alive but slow (a lock held, a stalled disk)
 * cancels the statement itself and answers, so the connection stays usable and nothing is left
 * running there. Only a server that answers nothing at all reaches the client's limit, whose
 * connection ClosingOnTimeout then closes. Closing on the client's limit alone left the backend
 * waiting behind its lock: the pool opened a new connection for the next request, which waited
 * too, without bound (an outside review: 16 backends after 8 rounds of a pool of 2).
 */
function timeouts(queryTimeoutMs: number): pg.PoolConfig {
  return { query_timeout: queryTimeoutMs, statement_timeout: Math.floor(queryTimeoutMs * 0.9) };
}

/** A Kysely over a pg Pool. The pool connects lazily: the first query opens a connection. */
export function createPostgresDatabase(url: string, options: PostgresOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    Client: ClosingOnTimeout,
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: 10_000,
    ...(options.queryTimeoutMs === undefined ? {} : timeouts(options.queryTimeoutMs)),
  });
  // Run in the context of the pool's creation (the start), not in that of the request whose query
  // happened to open the failing connection: its log line named that request's id.
  const onIdleError = AsyncResource.bind((error: Error) => options.onIdleError?.(error));
  pool.on('error', onIdleError);
  // A client handed out just as the server drops its socket emits 'error' on itself, not on the
  // pool; unheard, that would crash the process. The failed query still rejects on its own.
  pool.on('connect', (client) => client.on('error', onIdleError));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
