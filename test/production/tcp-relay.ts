import { connect, createServer, type Server, type Socket } from 'node:net';

/** A loopback TCP relay to a service, to cut and restore (PostgreSQL "going down" for one test only). */
export interface TcpRelay {
  port: number;
  /** Refuses new connections and drops open ones, as a stopped server would. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** Forwards nothing more, either way, with every connection left open: a server that hangs. */
  hang(): void;
  /** Forwards again after hang(). */
  unhang(): void;
  /**
   * Forwards nothing more on the connections open now, leaving them open, while new ones work: what
   * a NAT or firewall that forgot its connections does (until unhang()).
   */
  hangOpenConnections(): void;
  /**
   * Once: the first request bytes that `match` forwarded, the connection stops answering: what the
   * service says next is held back, then the connection is reset after `holdMs` (a lost answer to a
   * command that did run), or, with `hold: true`, kept open and silent until unhang() (an answer
   * that never comes).
   */
  loseAnswerAfter(match: (request: Buffer) => boolean, options?: { holdMs?: number; hold?: boolean }): void;
  close(): Promise<void>;
}

export async function startTcpRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let hung = false;
  let armed: { match: (request: Buffer) => boolean; holdMs: number; hold: boolean } | undefined;
  /** Connections holding answers back until unhang(). */
  const released = new Set<() => void>();
  const open = async () => {
    server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      // Answers of this connection from the matched request on are held back (loseAnswerAfter).
      let losing: { holdMs: number; hold: boolean } | undefined;
      client.on('data', (chunk: Buffer) => {
        if (armed?.match(chunk)) {
          losing = armed;
          armed = undefined;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!losing) {
          client.write(chunk);
          return;
        }
        // This answer and the ones after it wait, unread, in the socket.
        upstream.pause();
        upstream.unshift(chunk);
        if (losing.hold) {
          released.add(() => {
            losing = undefined;
            upstream.resume();
          });
        } else {
          setTimeout(() => {
            client.destroy();
            upstream.destroy();
          }, losing.holdMs);
        }
      });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      if (hung) for (const socket of [client, upstream]) socket.pause();
    });
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  };
  const shut = async () => {
    const closing = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (closing) await new Promise((resolve) => closing.close(resolve));
  };
  await open();
  return {
    port,
    cut: shut,
    restore: open,
    hang() {
      hung = true;
      for (const socket of sockets) socket.pause();
    },
    unhang() {
      hung = false;
      for (const release of released) release();
      released.clear();
      for (const socket of sockets) socket.resume();
    },
    hangOpenConnections() {
      for (const socket of sockets) socket.pause();
    },
    loseAnswerAfter(match, options = {}) {
      armed = { match, holdMs: options.holdMs ?? 50, hold: options.hold ?? false };
    },
    close: shut,
  };
}
