import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Views } from '../http/views.ts';
import type { Logger } from '../observability/logger.ts';
import type { KeyValueStore } from '../storage/ports.ts';
import type { Database } from '../storage/schema.ts';
import type { WebsiteQrConnector } from '../upstream/wechat/website-qr.ts';

/** The WeChat connectors configured, looked up the ways the interaction steps need. */
export interface Connectors {
  /** The website app whose QR code the login page shows (the first configured). */
  website: WebsiteQrConnector | undefined;
  byAppid(appid: string): WebsiteQrConnector | undefined;
}

/** What every interaction step gets: built once by the composition root. */
export interface InteractionDeps {
  provider: Provider;
  connectors: Connectors;
  kv: KeyValueStore;
  db: Kysely<Database>;
  views: Views;
  logger: Logger;
  issuer: string;
  now: () => Date;
}
