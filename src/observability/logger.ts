import { AsyncLocalStorage } from 'node:async_hooks';
import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

/** Field names that would hold a secret, wherever they appear. */
const SECRET_FIELDS = [
  'secret',
  'client_secret',
  'code',
  'state',
  'access_token',
  'refresh_token',
  'id_token',
  'session_key',
  'password',
  'authorization',
  'cookie',
];

/**
 * The objects a log line may carry a request's or a response's parts in. Not `err`: errors are
 * logged through errorFields, which keeps only fields that cannot hold a secret.
 */
const CONTAINERS = ['req', 'res', 'query', 'body', 'params', 'headers', 'details', 'payload'];

/**
 * Paths pino blanks whatever the message: belt and braces behind the rule that secrets are never
 * put into log objects in the first place (Secret prints as "[redacted]" on its own). Exact paths,
 * not wildcards: a wildcard makes pino walk every object of every line, which doubled the cost of
 * logging a request.
 */
export const REDACT_PATHS = [
  ...SECRET_FIELDS,
  ...CONTAINERS.flatMap((container) => SECRET_FIELDS.map((field) => `${container}.${field}`)),
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
];

/**
 * The id of the request being served, for every line logged while serving it: the handlers log
 * through the process's logger, several calls away from the request, and the line still names it.
 * Set by the front door (src/http/front-door.ts) around everything after its stages' start.
 */
export const requestIds = new AsyncLocalStorage<string>();

function requestIdField(): { requestId?: string } {
  const requestId = requestIds.getStore();
  return requestId === undefined ? {} : { requestId };
}

export function createLogger(options: { level: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      mixin: requestIdField,
      base: { service: 'wechat-oidc-bridge' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: errorFields },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous writes: measured, an asynchronous destination costs more CPU per line unless it
    // buffers (minLength), and a buffer loses its last lines when the process is killed.
    (options.destination as pino.DestinationStream | undefined) ?? pino.destination(1),
  );
}

/** Error codes as libraries spell them: errno names, SQLSTATEs, our own snake_case kinds. */
const ERROR_CODE = /^(?:[A-Z][A-Z0-9_]{1,39}|[0-9A-Z]{5}|[a-z]+(?:_[a-z]+)*)$/;
const MAX_CAUSES = 4;
/** errno, an HTTP status, WeChat's errcode (UpstreamError). */
const NUMBERS = ['errno', 'status', 'errcode'];
const IDENTIFIERS = ['syscall', 'table', 'column', 'constraint'];
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * A logged error as its class, message, stack and code, and the same of its causes. Not pino's
 * default serializer, which copies every enumerable property: ioredis hangs the command on its
 * errors (`command.args`: a key that holds a token, a payload being saved), pg the row and the
 * statement's context (`detail`, `where`, `internalQuery`: values, bind parameters), a body
 * parser the raw body. What identifies the failure stays; a field that may hold data does not.
 */
export function errorFields(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error) };
  const fields: Record<string, unknown> = {
    type: error.constructor?.name ?? 'Error',
    message: error.message,
  };
  const known = error as unknown as Record<string, unknown>;
  if (typeof known.code === 'string' && ERROR_CODE.test(known.code)) fields.code = known.code;
  for (const name of NUMBERS) if (typeof known[name] === 'number') fields[name] = known[name];
  // PostgreSQL names the schema object a statement failed on; names, never values.
  for (const name of IDENTIFIERS) {
    const value = known[name];
    if (typeof value === 'string' && IDENTIFIER.test(value)) fields[name] = value;
  }
  fields.stack = error.stack;
  if (error.cause !== undefined && depth < MAX_CAUSES) fields.cause = errorFields(error.cause, depth + 1);
  if (error instanceof AggregateError && depth < MAX_CAUSES)
    fields.errors = error.errors.slice(0, MAX_CAUSES).map((inner) => errorFields(inner, depth + 1));
  return fields;
}
