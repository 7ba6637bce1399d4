import { randomUUID } from 'node:crypto';
import { importJWK, type JWK, SignJWT } from 'jose';
import type { Transaction } from 'kysely';
import { errorClass } from '../observability/causes.ts';
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
  /** The provider's private JWKS: its first RSA key signs (eventSigner), and relying parties verify with /jwks. */
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
 * account_events_uri: a JWT signed with one of the provider's signing keys (kid in the header, so
 * the issuer's jwks_uri verifies it), aud = the client_id, sub = the account's subject, events =
 * { <type>: details }. Sending is one insert into the outbox, one row per recipient, signed as it
 * is written so every retry carries the same jti; event-delivery.ts pushes them (RFC 8935) and
 * retries. Signing takes about a millisecond per recipient (RS256): cheap enough to do inside the
 * transaction, where the recipients and details are read.
 */
export function createWebhookSender(deps: WebhookSenderDeps): WebhookSender {
  const signer = eventSigner(deps.jwks);
  return {
    async enqueue(trx, type, subject, clients, details = {}) {
      const iat = Math.floor(deps.now().getTime() / 1000);
      const recipients = clients.filter((client) => client.eventsUri !== undefined);
      const rows = await Promise.all(
        recipients.map(async ({ clientId, eventsUri }) => ({
          client_id: clientId,
          event_type: type,
          events_uri: eventsUri as string,
          token: await signer({
            iss: deps.issuer,
            aud: clientId,
            iat,
            jti: randomUUID(),
            sub: subject,
            events: { [ACCOUNT_EVENT_TYPES[type]]: details },
          }),
        })),
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

/** Signs one event's claims as a compact JWS (typ secevent+jwt, RFC 8417 2.3). */
export type EventSigner = (claims: Record<string, unknown>) => Promise<string>;

/** JWS algorithms by EC curve and OKP subtype, for keys that do not name theirs (RFC 7518 3.4, RFC 8037). */
const ALG_BY_CURVE: Record<string, string> = {
  'P-256': 'ES256',
  'P-384': 'ES384',
  'P-521': 'ES512',
  Ed25519: 'EdDSA',
  Ed448: 'EdDSA',
};

/** A key's JWS algorithm: the one it names, else the one its type and curve imply. */
function algorithmOf(jwk: Record<string, unknown>): string | undefined {
  if (typeof jwk.alg === 'string') return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  return typeof jwk.crv === 'string' ? ALG_BY_CURVE[jwk.crv] : undefined;
}

/**
 * The key account events are signed with: the first RS256 key, the algorithm every relying party
 * verifies (as ID tokens are by default), else the first key whose algorithm is known. Checked at
 * start: the configuration check guarantees a usable key, so none here is a bug, not a condition.
 */
export function eventSigner(jwks: { keys: Record<string, unknown>[] }): EventSigner {
  const jwk =
    jwks.keys.find((key) => key.kty === 'RSA' && algorithmOf(key) === 'RS256') ??
    jwks.keys.find((key) => algorithmOf(key) !== undefined);
  const alg = jwk && algorithmOf(jwk);
  if (!jwk || !alg) throw new Error('no signing key with a known algorithm for account events');
  const header = { alg, typ: 'secevent+jwt', ...(typeof jwk.kid === 'string' ? { kid: jwk.kid } : {}) };
  let key: ReturnType<typeof importJWK> | undefined;
  return async (claims) => {
    key ??= importJWK(jwk as JWK, alg);
    return new SignJWT(claims).setProtectedHeader(header).sign(await key);
  };
}
