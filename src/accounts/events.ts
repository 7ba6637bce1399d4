import type { Transaction } from 'kysely';
import type Provider from 'oidc-provider';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/schema.ts';
import type { SessionIds } from './revocation.ts';
import {
  ACCOUNT_EVENTS_URI_METADATA,
  type AccountEventType,
  type WebhookClient,
  type WebhookSender,
} from './webhooks.ts';

/** An account event, with the clients that know the account's `sub`: those holding a grant or a remembered consent. */
export interface AccountEvent {
  subject: string;
  clientIds: string[];
  /** The sessions ended, as the sid each client was given. */
  sids?: SessionIds;
}

/**
 * An account event for its clients, to be written in the transaction of the change it announces
 * (the transactional outbox: the change and the event are stored together or not at all) and sent
 * once that transaction has committed. Made for one change: it remembers what it wrote.
 */
export interface Announcement {
  /**
   * In the change's transaction: the account_events_uri rows (webhooks.ts). Throws when they cannot
   * be written, which rolls the change back. Reads each client's registration: the configured
   * clients are in oidc-provider's memory (an id no longer configured is looked up in its adapter).
   */
  write(trx: Transaction<Database>): Promise<void>;
  /**
   * After the commit: the delivery loop is kicked (event-delivery.ts), and back-channel logout is
   * sent where the event calls for it (one attempt; failures are logged). Never throws.
   */
  send(): Promise<void>;
}

export interface AccountNotifier {
  /** The account-deleted event, and back-channel logout. */
  deleted(event: AccountEvent): Announcement;
  /**
   * Back-channel logout only, sent now: the person ended their sessions and grants at these clients
   * from the account page ("sign out everywhere", or one application revoked); the account stays.
   */
  signedOut(event: AccountEvent): Promise<void>;
  /** The identities-changed event (an app unbound or linked); `appids` are the apps linked now. */
  identitiesChanged(event: AccountEvent & { appids: string[] }): Announcement;
}

interface BackchannelClient {
  /** Without a sid the token names the sub alone: every session of that person at the client. */
  backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
}

/**
 * How relying parties hear about accounts they know, each only if its registration asks:
 * - backchannel_logout_uri (OpenID Connect Back-Channel Logout 1.0): a logout token when the account
 *   is deleted, when the person signs out everywhere and when they revoke the client on the account
 *   page (sub = the account's subject; with a sid per session for clients that registered
 *   backchannel_logout_session_required, else none, so every session of that sub must end);
 * - account_events_uri (ours): signed Security Event Tokens for deletion and identity changes,
 *   written to the outbox in the transaction of the change they announce (webhooks.ts) and
 *   delivered with retries (event-delivery.ts).
 * One slow or failing client never stops the others, nor what caused the event: delivery failures
 * are logged. Back-channel logout is oidc-provider's own: one attempt, awaited after the commit.
 */
export function createAccountNotifier(
  provider: Provider,
  webhook: WebhookSender | undefined,
  logger: Logger,
): AccountNotifier {
  const webhookClients = async (clientIds: string[]): Promise<WebhookClient[]> => {
    const clients: WebhookClient[] = [];
    for (const clientId of clientIds) {
      const client = await provider.Client.find(clientId);
      const eventsUri = (client as unknown as Record<string, unknown> | undefined)?.[
        ACCOUNT_EVENTS_URI_METADATA
      ];
      if (typeof eventsUri === 'string') clients.push({ clientId, eventsUri });
    }
    return clients;
  };
  const logOut = ({ subject, clientIds, sids }: AccountEvent, why: string) =>
    clientIds.map(async (clientId) => {
      const client = await provider.Client.find(clientId);
      if (!client?.backchannelLogoutUri) return;
      // A token naming the sub alone ends every session of it (Back-Channel Logout 1.0 section 2.4);
      // a client that registered backchannel_logout_session_required gets one per session ended,
      // with its sid, as it asked (oidc-provider puts in whatever sid it is given, none included).
      const named = client.backchannelLogoutSessionRequired ? (sids?.[clientId] ?? []) : [];
      for (const sid of named.length > 0 ? named : [undefined]) {
        try {
          // Defined by oidc-provider when the backchannelLogout feature is on; its typings omit it.
          await (client as unknown as BackchannelClient).backchannelLogout(subject, sid);
          logger.info({ clientId, why }, 'back-channel logout sent');
        } catch (err) {
          logger.warn(
            { clientId, why, reason: err instanceof Error ? err.message : String(err) },
            'back-channel logout failed',
          );
        }
      }
    });
  const announcement = (
    type: AccountEventType,
    { subject, clientIds }: AccountEvent,
    details: Record<string, unknown>,
    logOuts: () => Promise<void>[] = () => [],
  ): Announcement => {
    let enqueued = 0;
    return {
      async write(trx) {
        if (webhook)
          enqueued = await webhook.enqueue(trx, type, subject, await webhookClients(clientIds), details);
      },
      async send() {
        if (enqueued > 0) webhook?.enqueued();
        await Promise.all(logOuts());
      },
    };
  };
  return {
    deleted: (event) => announcement('deleted', event, {}, () => logOut(event, 'account deleted')),
    async signedOut(event) {
      await Promise.all(logOut(event, 'signed out from the account page'));
    },
    identitiesChanged: ({ appids, ...event }) => announcement('identitiesChanged', event, { appids }),
  };
}
