import { format } from 'node:util';
import type { Logger } from './logger.ts';

/**
 * What libraries write to the console themselves, as lines of the log: ioredis's notices (a
 * password sent to a Redis that needs none, a skipped ready check, its "Unhandled error event")
 * and oidc-provider's (console.info: its notice that the default CORS policy was used, at the
 * first cross-origin userinfo call). Written raw they were the process's one output that was not a
 * JSON line (console.info and console.log on the log's own stream), which a pipeline parsing the
 * log drops or flags. Our own code never uses the console once the logger exists; what reaches it
 * is a library's, hence `source`.
 */
export function logConsoleOutput(logger: Logger): void {
  const line =
    (level: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) =>
      logger[level]({ source: 'console' }, format(...args));
  console.error = line('error');
  console.warn = line('warn');
  console.info = line('info');
  console.log = line('info');
  console.debug = line('debug');
}
