import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { AccountNotifier } from '../accounts/events.ts';
import type { Account } from '../accounts/repository.ts';
import type { Views } from '../http/views.ts';
import type { Logger } from '../observability/logger.ts';
import type { KeyValueStore } from '../storage/ports.ts';
import type { Database } from '../storage/schema.ts';
import type { OfficialAccountConnector } from '../upstream/wechat/official-account.ts';
import type { WebsiteQrConnector } from '../upstream/wechat/website-qr.ts';
import type { StateSigner } from './wechat-state.ts';

/** A connector the login pages can send a browser through. */
export type LoginConnector = WebsiteQrConnector | OfficialAccountConnector;

/**
 * The WeChat connectors configured, looked up the ways the interaction steps need. Several apps of
 * each kind may be configured: logins start with the first of a kind, and callbacks are completed by
 * whichever app the state names (all of them bound to one Open Platform account, so one unionid).
 */
export interface Connectors {
  /** The website app whose QR code the login page shows (the first configured). */
  website: WebsiteQrConnector | undefined;
  /** The official account a login inside the WeChat browser goes through (the first configured). */
  officialAccount: OfficialAccountConnector | undefined;
  byAppid(appid: string): LoginConnector | undefined;
}

/** What every interaction step gets: built once by the composition root. */
export interface InteractionDeps {
  provider: Provider;
  connectors: Connectors;
  kv: KeyValueStore;
  /** Signs the `state` of each trip to WeChat and reads it back on the callback. */
  states: StateSigner;
  db: Kysely<Database>;
  /** Accounts by subject as oidc-provider's findAccount reads them (through the account cache). */
  accountBySubject: (subject: string) => Promise<Account | undefined>;
  views: Views;
  logger: Logger;
  issuer: string;
  now: () => Date;
  /** Tells relying parties when a login links a new app to an existing account; absent in some tests. */
  notifier?: AccountNotifier;
  /**
   * How long a duplicate WeChat callback waits for the first delivery's outcome (its code exchange
   * and profile read): callbackOutcomeWaitMs of the WeChat timeout (wechat-callback.ts); default
   * 22 600 ms, for the default 5 000 ms timeout.
   */
  callbackWaitMs?: number;
}
