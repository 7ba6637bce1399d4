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

/** The objects a log line may carry a request's or a response's parts in. */
const CONTAINERS = ['req', 'res', 'err', 'query', 'body', 'params', 'headers', 'details', 'payload'];

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

export function createLogger(options: { level: string; destination?: NodeJS.WritableStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'wechat-oidc-bridge' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // Synchronous writes: measured, an asynchronous destination costs more CPU per line unless it
    // buffers (minLength), and a buffer loses its last lines when the process is killed.
    (options.destination as pino.DestinationStream | undefined) ?? pino.destination(1),
  );
}
