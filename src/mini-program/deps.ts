import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { AccountNotifier } from '../accounts/events.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/schema.ts';
import type { MiniProgramConnector } from '../upstream/wechat/mini-program.ts';
import type { GrantIdentityStore } from './grant-identities.ts';
import type { SessionKeyStore } from './session-keys.ts';

/** What the mini-program endpoints need: built once by the composition root. */
export interface MiniProgramDeps {
  provider: Provider;
  db: Kysely<Database>;
  sessionKeys: SessionKeyStore;
  /** Which identity each token-exchange grant was issued for (read when an account has several in one app). */
  grantIdentities: GrantIdentityStore;
  /** The connector of a configured mini_program app. */
  miniProgram(appid: string): MiniProgramConnector | undefined;
  logger: Logger;
  now: () => Date;
  /** Tells relying parties when a verified phone recovers an account; absent in some tests. */
  notifier?: AccountNotifier | undefined;
  /** Encrypted data older than this (its watermark.timestamp) is refused, seconds. */
  encryptedDataMaxAge: number;
  /**
   * The largest JSON body read, bytes (limits.maxBodyBytes): the limit a body with a Content-Length
   * meets in front of every route (src/http/request-limits.ts), for one sent without a length too.
   */
  maxBodyBytes?: number | undefined;
  /**
   * Counts a call of one person in one mini program (the key): undefined to go on, else the
   * milliseconds until they may call again. Absent when rate limits are off.
   */
  rateLimit?: ((key: string) => Promise<number | undefined>) | undefined;
  /** Told of each call refused by `rateLimit` (the http_rate_limited_total counter). */
  onRateLimited?: (() => void) | undefined;
}
