import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * How an instance stops: announce it (config.shutdown.delay), then stop accepting and let what is in
 * flight finish (config.shutdown.timeout).
 */

/**
 * The shutdown delay: the server goes on answering, but every answer closes its connection, so that
 * clients and proxies holding keep-alive connections to this instance open their next one wherever
 * the load balancer now sends them (a Kubernetes Service's connection stays with its pod until
 * closed). /readyz answers 503 meanwhile (src/http/health.ts). Resolves after `ms`.
 */
export function announceShutdown(server: Server, ms: number): Promise<void> {
  // First, so that it is set before any application code can answer.
  server.prependListener('request', closeAfterAnswer);
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closeAfterAnswer(_req: unknown, res: ServerResponse): void {
  res.shouldKeepAlive = false;
}

/** How long a shutdown waits for in-flight requests before cutting their connections (config.shutdown.timeout). */
export const DRAIN_TIMEOUT_DEFAULT_SECONDS = 10;

/**
 * A connection, with Node's own pointer to the response it is writing (`_httpMessage`: set when a
 * request's response takes the socket, null once it is finished; http-terminator reads it too).
 */
export type Connection = Socket & { _httpMessage?: ServerResponse | null };

/**
 * The open connections, so a shutdown can close each keep-alive connection as it goes idle.
 *
 * Connections, not responses: a set of responses, added to and deleted from on every request, made
 * V8 promote every request's objects to the old generation under load (megabytes per young
 * collection, measured with --trace-gc; see bench/README.md). A keep-alive connection serves many
 * requests, so this set rarely changes. The response in flight is Node's `_httpMessage`: keeping it
 * ourselves took a listener on every request and another on its response (about 2,000 instructions
 * of a userinfo call under callgrind, bench/README.md "Instructions").
 */
export function trackConnections(server: Server): Set<Connection> {
  const connections = new Set<Connection>();
  server.on('connection', (socket: Connection) => {
    connections.add(socket);
    settleShape(socket);
    socket.once('close', () => connections.delete(socket));
  });
  return connections;
}

/**
 * Reads the peer's address once, as the connection opens. Node caches it on the socket
 * (`_peername`) at the first read, and the first response's keep-alive timer adds `timeout`: V8
 * gives each order of additions its own hidden class. The rate limits read the address on the
 * login's requests and nothing does on a token or userinfo call, so connections came in both orders,
 * and with undici's sockets to WeChat beside them Node's socket and stream code met more shapes
 * than V8 keeps per site (four): its property loads there went megamorphic, on every request.
 * One order for all: userinfo 374,637 -> 368,085 instructions on the bridge's main thread
 * (`npm run bench -- --instructions userinfo`, 6 Dec; bench/FINDINGS.md).
 */
function settleShape(socket: Socket): void {
  void socket.remoteAddress;
}

/** What a drain met: the requests in flight when the server stopped accepting, and how many were cut. */
export interface Drained {
  inFlight: number;
  cut: number;
}

/**
 * Stops accepting connections, lets in-flight requests finish (closing their keep-alive
 * connections once answered), and cuts whatever is left after timeoutMs. Resolves with how many
 * requests were in flight and how many of them the cut left unanswered (0 when everything finished
 * in time), for the log: an operator whose deploys cut requests needs a longer shutdown.timeout,
 * or to find what hangs.
 */
export function closeServer(
  server: Server,
  connections: Set<Connection>,
  timeoutMs: number,
): Promise<Drained> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve({ inFlight: 0, cut: 0 });
    const inFlightAtClose = [...connections].filter(inFlight).length;
    let cut = 0;
    const timer = setTimeout(() => {
      cut = [...connections].filter(inFlight).length;
      server.closeAllConnections();
    }, timeoutMs);
    server.close(() => {
      clearTimeout(timer);
      resolve({ inFlight: inFlightAtClose, cut });
    });
    server.closeIdleConnections();
    for (const socket of connections) {
      if (!inFlight(socket)) continue;
      const res = socket._httpMessage as ServerResponse;
      if (!res.headersSent) res.setHeader('Connection', 'close');
      res.on('finish', () => setImmediate(() => server.closeIdleConnections()));
    }
  });
}

/** Whether the connection carries a request whose answer is not yet all written. */
function inFlight(socket: Connection): boolean {
  const res = socket._httpMessage;
  return !!res && !res.writableFinished;
}
