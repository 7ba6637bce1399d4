import type { Server } from 'node:http';

/**
 * How long an idle keep-alive connection stays open. Node's default is 5 s, and the proxies and
 * load balancers that sit in front keep their idle connections to the instance 60 s (nginx's
 * upstream keepalive_timeout, AWS's ALB): one that reuses a connection the instance has just closed
 * answers 502. Past theirs, the proxy closes first. The headers' own deadline stays above it, as
 * Node requires of the two.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export function keepConnectionsForProxies(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1_000;
}
