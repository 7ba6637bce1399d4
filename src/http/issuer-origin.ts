import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import type { RequestStage } from './front-door.ts';

/** Requests that named another host than the issuer's (kept aside: their headers are rewritten). */
const misaddressed = new WeakSet<IncomingMessage>();

/**
 * Every URL oidc-provider derives from a request (discovery's endpoints, the token endpoint a client
 * assertion must name as its audience, redirects to its own pages) starts with the origin koa reads
 * from the request: the Host header, or behind a trusted proxy X-Forwarded-Host and -Proto, which a
 * proxy passes on from the client unless told to replace them. A forged one would have discovery
 * name another server as this provider's token endpoint, in an answer a cache in front may keep and
 * hand to every relying party. The issuer is the provider's one public name: requests are read as
 * addressed to its host, and, when it is https (production), as arriving over https (the
 * TLS-terminating proxy that production requires says so, but so could a client).
 */
export function issuerOrigin(options: { issuer: string; trustProxy: boolean }): RequestStage {
  const { host, protocol } = new URL(options.issuer);
  const https = protocol === 'https:';
  return {
    start(ctx) {
      const headers = ctx.req.headers;
      // Node joins repeated X-Forwarded-Host headers into one string.
      const forwarded = options.trustProxy ? (headers['x-forwarded-host'] as string | undefined) : undefined;
      // What koa would have read: the proxy's forwarded host (its first entry), else Host.
      const addressed = forwarded === undefined ? headers.host : forwarded.split(',', 1)[0]?.trim();
      if (addressed !== host) misaddressed.add(ctx.req);
      if (headers.host !== host) headers.host = host;
      if (!options.trustProxy) return;
      // Set only where present: koa falls back to Host without it.
      if (forwarded !== undefined) headers['x-forwarded-host'] = host;
      if (https && headers['x-forwarded-proto'] !== 'https') headers['x-forwarded-proto'] = 'https';
    },
  };
}

/** Whether the request named another host than the issuer's (http://127.0.0.1 for localhost...). */
export function addressedToAnotherHost(ctx: Context): boolean {
  return misaddressed.has(ctx.req);
}
