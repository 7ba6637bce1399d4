import { describeRedisTarget, parseRedisTarget } from './redis/target.ts';

/**
 * A database or Redis URL reduced to what is safe to log: scheme, host, port and path,
 * never user info (passwords) or query parameters (they can carry passwords too).
 */
export function describeUrl(url: string): string {
  // Cluster and Sentinel URLs list several hosts, which a WHATWG URL cannot hold.
  if (/^rediss?\+/.test(url)) {
    try {
      const target = parseRedisTarget(url);
      if (target.mode !== 'server') return describeRedisTarget(target);
    } catch {
      return '[unparsable URL]';
    }
  }
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '[unparsable URL]';
  }
}

/**
 * A store's connection error reduced to its message, for a start-up failure's cause: connection
 * errors carry host and port, never the URL, but only the message is kept to be sure (no stack,
 * no properties a driver may attach). A message-less error (Node's AggregateError for a host of
 * several addresses) is said by its code.
 */
export function connectionFailure(error: unknown): Error {
  if (!(error instanceof Error)) return new Error(String(error));
  return new Error(error.message || String((error as { code?: unknown }).code ?? error.name));
}
