import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { request } from 'undici';
import type { Logger } from '../observability/logger.ts';

/** Client metadata (ours, not standard): where a relying party receives account events. */
export const ACCOUNT_EVENTS_URI_METADATA = 'account_events_uri';

/** The events a relying party can be told of, as Security Event Token event types (RFC 8417). */
export const ACCOUNT_EVENT_TYPES = {
  deleted: 'urn:wechat-oidc-bridge:event:account-deleted',
  identitiesChanged: 'urn:wechat-oidc-bridge:event:identities-changed',
} as const;

export type AccountEventType = keyof typeof ACCOUNT_EVENT_TYPES;

export interface WebhookClient {
  clientId: string;
  /** The client's account_events_uri; clients without one are skipped. */
  eventsUri: string | undefined;
}

export interface WebhookSenderDeps {
  issuer: string;
  /** The provider's private JWKS: the first key signs, and relying parties verify with /jwks. */
  jwks: { keys: Record<string, unknown>[] };
  logger: Logger;
  now: () => Date;
  timeoutMs?: number;
}

export type WebhookSender = (
  type: AccountEventType,
  subject: string,
  clients: readonly WebhookClient[],
  details?: Record<string, unknown>,
) => Promise<void>;

/**
 * Pushes signed Security Event Tokens (RFC 8417, delivered as RFC 8935 push: POST
 * application/secevent+jwt) to relying parties that registered account_events_uri. The token is a
 * JWT signed with the provider's first signing key (kid in the header, so the issuer's jwks_uri
 * verifies it), aud = the client_id, sub = the account's subject, events = { <type>: details }.
 * Delivery is best effort, once: a failure is logged and never undoes what happened.
 */
export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const signer = signingKey(deps.jwks);
  return async (type, subject, clients, details = {}) => {
    await Promise.all(
      clients.map(async ({ clientId, eventsUri }) => {
        if (!eventsUri || !signer) return;
        const token = signer.sign({
          iss: deps.issuer,
          aud: clientId,
          iat: Math.floor(deps.now().getTime() / 1000),
          jti: randomUUID(),
          sub: subject,
          events: { [ACCOUNT_EVENT_TYPES[type]]: details },
        });
        try {
          const response = await request(eventsUri, {
            method: 'POST',
            headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
            body: token,
            headersTimeout: deps.timeoutMs ?? 5000,
            bodyTimeout: deps.timeoutMs ?? 5000,
          });
          await response.body.dump();
          if (response.statusCode >= 300) throw new Error(`answered ${response.statusCode}`);
          deps.logger.info({ clientId, type }, 'account event delivered');
        } catch (err) {
          deps.logger.warn(
            { clientId, type, reason: err instanceof Error ? err.message : String(err) },
            'account event not delivered',
          );
        }
      }),
    );
  };
}

interface Signer {
  sign(payload: Record<string, unknown>): string;
}

function signingKey(jwks: { keys: Record<string, unknown>[] }): Signer | undefined {
  const jwk = jwks.keys.find((key) => key.kty === 'RSA') ?? jwks.keys[0];
  if (!jwk) return undefined;
  const key = createPrivateKey({ key: jwk as never, format: 'jwk' });
  const alg = jwk.kty === 'RSA' ? 'RS256' : jwk.kty === 'OKP' ? 'EdDSA' : 'ES256';
  return {
    sign(payload) {
      const header = { alg, typ: 'secevent+jwt', ...(jwk.kid ? { kid: jwk.kid } : {}) };
      const input = `${b64(header)}.${b64(payload)}`;
      const signature =
        alg === 'RS256'
          ? sign('sha256', Buffer.from(input), key)
          : alg === 'EdDSA'
            ? sign(null, Buffer.from(input), key)
            : sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
      return `${input}.${signature.toString('base64url')}`;
    },
  };
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
