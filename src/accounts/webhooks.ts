import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/schema.ts';

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
  /** Called once enqueued events have committed: the delivery loop's kick, so they leave at once. */
  onEnqueued?: () => void;
}

export interface WebhookSender {
  /**
   * Writes one event's outbox rows in `trx`, the transaction of the change the event announces, so
   * that both commit or neither does (the transactional outbox). One row per client with an
   * account_events_uri; resolves how many were written. A failure is logged and thrown: the change
   * is rolled back with its event rather than made without it.
   */
  enqueue(
    trx: Transaction<Database>,
    type: AccountEventType,
    subject: string,
    clients: readonly WebhookClient[],
    details?: Record<string, unknown>,
  ): Promise<number>;
  /** After the commit of rows enqueued: the delivery loop sends them now rather than at its next poll. */
  enqueued(): void;
}

/**
 * Account events as signed Security Event Tokens (RFC 8417) for relying parties that registered
 * account_events_uri: a JWT signed with the provider's first signing key (kid in the header, so
 * the issuer's jwks_uri verifies it), aud = the client_id, sub = the account's subject, events =
 * { <type>: details }. Sending is one insert into the outbox, one row per recipient, signed as it
 * is written so every retry carries the same jti; event-delivery.ts pushes them (RFC 8935) and
 * retries. Signing is synchronous and takes about a millisecond per recipient: cheap enough to do
 * inside the transaction, where the recipients and details are read.
 */
export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const signer = signingKey(deps.jwks);
  return {
    async enqueue(trx, type, subject, clients, details = {}) {
      if (!signer) return 0;
      const iat = Math.floor(deps.now().getTime() / 1000);
      const rows = clients.flatMap(({ clientId, eventsUri }) =>
        eventsUri
          ? [
              {
                client_id: clientId,
                event_type: type,
                events_uri: eventsUri,
                token: signer.sign({
                  iss: deps.issuer,
                  aud: clientId,
                  iat,
                  jti: randomUUID(),
                  sub: subject,
                  events: { [ACCOUNT_EVENT_TYPES[type]]: details },
                }),
              },
            ]
          : [],
      );
      if (rows.length === 0) return 0;
      try {
        await trx.insertInto('account_event_deliveries').values(rows).execute();
      } catch (err) {
        deps.logger.error(
          { type, clients: rows.map((row) => row.client_id), reason: errorClass(err) },
          'account event not enqueued: the change it announces is rolled back',
        );
        throw err;
      }
      return rows.length;
    },
    enqueued() {
      deps.onEnqueued?.();
    },
  };
}

/** A short, secret-free reason for logs and last_error: an error's code or class. */
export function errorClass(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return typeof code === 'string' ? code : err.name;
  }
  return typeof err;
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
