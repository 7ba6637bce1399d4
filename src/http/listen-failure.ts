/**
 * Why a listener could not bind, naming the setting that chose its port: Node's own
 * ("listen EADDRINUSE: address already in use 127.0.0.1:4110") reads the same for the main port,
 * the management port and the sandbox's, so the operator could not tell which one to change.
 */
export function listenFailure(
  setting: string,
  host: string,
  port: number,
  error: NodeJS.ErrnoException,
  advice: string,
): Error {
  const why = error.code === 'EADDRINUSE' ? 'address already in use (EADDRINUSE)' : error.message;
  return new Error(`${setting}: cannot listen on ${address(host, port)}: ${why}; ${advice}`, {
    cause: error,
  });
}

/** host:port, with an IPv6 host in brackets. */
export function address(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
