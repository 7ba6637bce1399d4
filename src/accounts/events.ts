import type Provider from 'oidc-provider';
import type { Logger } from '../observability/logger.ts';
import type { SessionIds } from './revocation.ts';
import { ACCOUNT_EVENTS_URI_METADATA, type WebhookClient, type WebhookSender } from './webhooks.ts';

/** An account event, with the clients that held a grant for the account (they know its `sub`). */
export interface AccountEvent {
  subject: string;
  clientIds: string[];
  /** The sessions ended, as the sid each client was given. */
  sids?: SessionIds;
}

export interface AccountNotifier {
  /** Back-channel logout and the account-deleted event. */
  deleted(event: AccountEvent): Promise<void>;
  /**
   * Back-channel logout only: the person ended their sessions and grants at these clients from the
   * account page ("sign out everywhere", or one application revoked); the account stays.
   */
  signedOut(event: AccountEvent): Promise<void>;
  /** The identities-changed event (an app unbound or linked); `appids` are the apps linked now. */
  identitiesChanged(event: AccountEvent & { appids: string[] }): Promise<void>;
}

interface BackchannelClient {
  /** Without a sid the token names the sub alone: every session of that person at the client. */
  backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
}

/**
 * How relying parties hear about accounts they know, each only if its registration asks:
 * - backchannel_logout_uri (OpenID Connect Back-Channel Logout 1.0): a logout token when the account
 *   is deleted, when the person signs out everywhere and when they revoke the client on the account
 *   page (sub = the account's subject; no sid, so every session of that sub must end);
 * - account_events_uri (ours): signed Security Event Tokens for deletion and identity changes,
 *   queued in the outbox (webhooks.ts) and delivered with retries (event-delivery.ts).
 * One slow or failing client never stops the others, nor what caused the event: failures are logged.
 * Back-channel logout is oidc-provider's own: one attempt, awaited here.
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
  return {
    async deleted(event) {
      const { subject, clientIds } = event;
      await Promise.all([
        ...logOut(event, 'account deleted'),
        webhook?.('deleted', subject, await webhookClients(clientIds)),
      ]);
    },
    async signedOut(event) {
      await Promise.all(logOut(event, 'signed out from the account page'));
    },
    async identitiesChanged({ subject, clientIds, appids }) {
      await webhook?.('identitiesChanged', subject, await webhookClients(clientIds), { appids });
    },
  };
}
