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

/** A Kysely over a pg Pool. The pool connects lazily: the first query opens a connection. */
export function createPostgresDatabase(url: string, options: PostgresOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: 10_000,
    ...(options.queryTimeoutMs === undefined ? {} : { query_timeout: options.queryTimeoutMs }),
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
