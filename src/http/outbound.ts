import { Agent, type Dispatcher } from 'undici';

let shared: Agent | undefined;

/**
 * The connection pools every outbound request of this process goes through: WeChat's API, avatar
 * downloads and account-event deliveries. Keep-alive connections are kept per origin and reused by
 * every server in the process.
 *
 * Ours, not undici's global dispatcher: that one is whatever was installed first in the process,
 * and the first call to Node's own fetch installs Node's bundled undici (an older major version),
 * which undici's request() then drives through compatibility wrappers. Measured on 6 Dec: in the
 * bench's bridge every WeChat call went through Node's bundled undici 6 that way.
 */
export function outboundDispatcher(): Dispatcher {
  shared ??= new Agent({
    // Long enough to carry a connection from one login's calls to the next one's; undici still
    // follows a shorter keep-alive the server announces.
    keepAliveTimeout: 10_000,
  });
  return shared;
}
