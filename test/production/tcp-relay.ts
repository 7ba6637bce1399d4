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
  close(): Promise<void>;
}

export async function startTcpRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  let hung = false;
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
      client.pipe(upstream).pipe(client);
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
      for (const socket of sockets) socket.resume();
    },
    close: shut,
  };
}
