import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../src/config/types.ts';
import { RP } from './bridge.ts';

/** A relying party that registers for back-channel logout (give it a receiver's URL). */
export const BCL_RP = {
  ...RP,
  client_id: 'test-bcl-rp',
  client_secret: 'test-bcl-rp-secret-0123456789abcdef',
};

export interface LogoutReceiver {
  server: Server;
  url: string;
  /** The logout tokens received so far, in order. */
  tokens: string[];
}

/** A bridge's `configure`: its clients and BCL_RP, which sends its logouts to `receiver`. */
export function withBackchannelClient(receiver: LogoutReceiver): (config: Config) => Config {
  return (config) => ({
    ...config,
    clients: [...config.clients, { ...BCL_RP, backchannel_logout_uri: receiver.url }],
  });
}

/** An endpoint on loopback that records every back-channel logout token posted to it. */
export async function logoutReceiver(): Promise<LogoutReceiver> {
  const tokens: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`,
    tokens,
  };
}

/**
 * Runs `action` with the receiver reachable by the bridge in this process. oidc-provider refuses to
 * call loopback addresses (its SSRF guard, kept in production): the receiver alone is let through,
 * by dropping the guard's dispatcher for its URL.
 */
export async function withLogoutsDelivered<T>(
  receiver: LogoutReceiver,
  action: () => Promise<T>,
): Promise<T> {
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((url: string | URL | Request, init?: RequestInit) =>
    String(url).startsWith(receiver.url)
      ? realFetch(url, { ...init, dispatcher: undefined } as RequestInit)
      : realFetch(url, init)) as typeof fetch;
  try {
    return await action();
  } finally {
    globalThis.fetch = realFetch;
  }
}

/** A JWT's payload, unverified (the tests check what the bridge sent, not who signed it). */
export const payloadOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;

export const BACKCHANNEL_LOGOUT_EVENT = { 'http://schemas.openid.net/event/backchannel-logout': {} };
