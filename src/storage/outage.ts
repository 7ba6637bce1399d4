/**
 * How long a caller told a store is out should wait before trying again (Retry-After), as the
 * dependency gate tells every request while a store is known down (src/http/dependency-gate.ts).
 */
export const OUTAGE_RETRY_AFTER_SECONDS = 5;

/**
 * Whether `error` (or one of its causes) says a store could not be reached or did not answer - a
 * connection refused, reset or cut, a statement or command timed out, a server shutting down or
 * failing over - rather than that it refused what was asked (a constraint, a trigger, a bug of
 * ours). Such a failure passes: the caller answers 503 and "try again", not 500.
 *
 * pg and ioredis mostly say so in messages of their own, without a code: a query on a connection
 * the server dropped rejects with "Connection terminated unexpectedly" (and Kysely's rollback on it
 * replaces the server's own 57P01 with that), a hung one with "Query read timeout"; a hung Redis
 * with "Command timed out", a closed one with "Connection is closed.".
 */
export function isStoreOutage(error: unknown): boolean {
  for (let at = error, depth = 0; at instanceof Error && depth < 5; at = at.cause, depth++) {
    if (saysOutage(at)) return true;
  }
  return false;
}

function saysOutage(error: Error): boolean {
  const { code } = error as { code?: unknown };
  if (typeof code === 'string' && (NETWORK_ERRORS.has(code) || SERVER_UNAVAILABLE.test(code))) return true;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  if (error.name === 'ReplyError' && REDIS_UNAVAILABLE.test(error.message)) return true;
  return DRIVER_MESSAGES.some((message) => error.message.startsWith(message));
}

/** Node's errors for a connection that failed, was cut or could not be made. */
const NETWORK_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL's SQLSTATEs for the same: class 08 (connection exception) but 08P01 (a protocol
 * violation: a statement sent with the wrong number of parameters, a bug of ours), 57P01-57P03 (the
 * server shutting down, or not accepting connections yet), 57014 (a statement cancelled by the
 * server's statement_timeout: postgres.ts sets it, so a server too slow to answer), 53300 (too many
 * connections).
 */
const SERVER_UNAVAILABLE = /^(?:080(?:00|01|03|04|06|07)|57P0[123]|57014|53300)$/;

/** Redis replies of a server loading its data, failing over, or a cluster without its slots. */
const REDIS_UNAVAILABLE = /^(?:LOADING|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

const DRIVER_MESSAGES = [
  // pg and pg-pool
  'Connection terminated',
  'Query read timeout',
  // A transaction's ROLLBACK on a connection closed after its statement timed out (postgres.ts):
  // Kysely throws the rollback's error in place of the timeout.
  'Client was closed and is not queryable',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  // ioredis
  'Command timed out',
  'Connection is closed.',
  "Stream isn't writeable",
  'Command aborted due to connection close',
  'Failed to refresh slots cache',
];
