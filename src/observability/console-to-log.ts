import { format } from 'node:util';
import type { Logger } from './logger.ts';

/**
 * What libraries write to the console themselves, as lines of the log: ioredis's notices (a
 * password sent to a Redis that needs none, a skipped ready check, its "Unhandled error event")
 * and oidc-provider's. Written raw to standard error they were the process's one output that was
 * not a JSON line, which a pipeline parsing the log drops or flags. Our own code never uses the
 * console once the logger exists; what reaches it is a library's, hence `source`.
 */
export function logConsoleOutput(logger: Logger): void {
  console.warn = (...args: unknown[]) => logger.warn({ source: 'console' }, format(...args));
  console.error = (...args: unknown[]) => logger.error({ source: 'console' }, format(...args));
}
