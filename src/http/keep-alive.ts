import type { Server, ServerOptions } from 'node:http';

/**
 * How long an idle keep-alive connection stays open. Node's default is 5 s, and the proxies and
 * load balancers that sit in front keep their idle connections to the instance 60 s (nginx's
 * upstream keepalive_timeout, AWS's ALB): one that reuses a connection the instance has just closed
 * answers 502. Past theirs, the proxy closes first.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** Seconds a client has to send a request's headers (`limits.headersTimeout`): about 1 KB. */
export const HEADERS_TIMEOUT_DEFAULT_SECONDS = 20;

/**
 * The whole request, body included: bodies here are at most 56 KiB (limits.maxBodyBytes), and
 * Node's default of five minutes let a client hold a connection and its parser that long.
 */
const REQUEST_TIMEOUT_MS = 60_000;

/** How often Node looks for connections past those deadlines (its default, 30 s, adds up to that much to each). */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

/**
 * `http.createServer` options bounding how long a client may take to send a request: past the
 * headers' deadline or the whole request's, Node answers 408 and closes the connection. A client
 * trickling its headers a byte at a time (slowloris) held a connection for up to 96 s before (the
 * headers' deadline was set above the keep-alive's, as Node before 18 needed; since then an idle
 * keep-alive connection is not subject to it, test/production/shutdown.test.ts).
 */
export function requestDeadlines(headersTimeoutSeconds: number): ServerOptions {
  const headersTimeout = headersTimeoutSeconds * 1000;
  return {
    headersTimeout,
    requestTimeout: Math.max(REQUEST_TIMEOUT_MS, headersTimeout),
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
  };
}

export function keepConnectionsForProxies(server: Server): void {
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
}
