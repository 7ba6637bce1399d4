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
