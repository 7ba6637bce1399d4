import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { WeChatAppKind } from '../upstream/wechat/types.ts';

/** A timestamptz that the database fills in when an insert leaves it out. */
type CreatedTimestamp = ColumnType<Date, Date | undefined, Date>;
type Timestamp = ColumnType<Date, Date, Date>;
type NullableTimestamp = ColumnType<Date | null, Date | null | undefined, Date | null>;

/** One person: created at their first login, found again by unionid. */
export interface AccountsTable {
  id: Generated<string>;
  /** The unionid the account was created with; the OIDC `sub`. Never changes. */
  subject: string;
  nickname: string | null;
  /** WeChat's avatar URL as last seen. */
  avatar_url: string | null;
  created_at: CreatedTimestamp;
  /** When the row last changed, a login included: orders copies of it (accounts/account-cache.ts). */
  updated_at: CreatedTimestamp;
  /**
   * When what the claims show last changed (nickname, avatar, phone, linked identities): the OIDC
   * `updated_at` claim. Required on insert: the embedded file's column has no default.
   */
  profile_updated_at: Timestamp;
  last_login_at: CreatedTimestamp;
  /** E.164 (+<country code><number>), from a mini program's getPhoneNumber button; null until then. */
  phone_number: ColumnType<string | null, string | null | undefined, string | null>;
  /** True once WeChat vouched for phone_number (getuserphonenumber). */
  phone_number_verified: ColumnType<boolean, boolean | undefined, boolean>;
  phone_verified_at: NullableTimestamp;
}

/** One WeChat app's view of a person (openid is per app), linked to an account. */
export interface IdentitiesTable {
  appid: string;
  openid: string;
  account_id: string;
  kind: WeChatAppKind;
  unionid: string | null;
  created_at: CreatedTimestamp;
  updated_at: CreatedTimestamp;
  last_login_at: CreatedTimestamp;
}

/** The self-hosted copy of an account's avatar (see accounts/avatars/store.ts). */
export interface AvatarsTable {
  account_id: string;
  /** The WeChat URL the bytes were downloaded from: a login with another URL downloads again. */
  source_url: string;
  content_type: string;
  etag: string;
  bytes: Uint8Array;
  updated_at: Timestamp;
}

/** Index of an account's oidc-provider grants and sessions (see accounts/artifact-index.ts). */
export interface AccountArtifactsTable {
  model: 'Grant' | 'Session';
  id: string;
  /** The account's subject (oidc-provider's accountId). */
  subject: string;
  client_id: string | null;
  expires_at: NullableTimestamp;
  created_at: CreatedTimestamp;
}

/** The audit record of a deleted account: counts and a time, nothing about the person. */
export interface AccountDeletionsTable {
  id: Generated<string>;
  deleted_at: Timestamp;
  requested_by: 'person' | 'operator';
  identities: number;
  grants_revoked: number;
  sessions_ended: number;
}

/**
 * A deleted account's leftovers outside this database, by its subject, until a pass finds none
 * (accounts/deletion-cleanup.ts).
 */
export interface AccountCleanupsTable {
  subject: string;
  due_at: Timestamp;
  attempts: Generated<number>;
}

/** The outbox of account events for relying parties (see accounts/event-delivery.ts). */
export interface AccountEventDeliveriesTable {
  id: Generated<string>;
  client_id: string;
  /** The event's short name (AccountEventType), for logs. */
  event_type: string;
  events_uri: string;
  /** The signed Security Event Token: the same bytes (and jti) on every attempt. */
  token: string;
  /** Attempts started so far (counted when a delivery loop claims the row). */
  attempts: ColumnType<number, number | undefined, number>;
  /** When the row is next due; a claim pushes it forward as a lease. */
  next_attempt_at: CreatedTimestamp;
  /** Why the last attempt failed: a status code or an error class, never the token. */
  last_error: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedTimestamp;
}

/** What a person allowed a third-party client, remembered until revoked (accounts/consents.ts). */
export interface ConsentsTable {
  account_id: string;
  client_id: string;
  /** OpenID scopes, sorted. */
  scopes: string[];
  created_at: CreatedTimestamp;
  updated_at: CreatedTimestamp;
}

/** oidc-provider artifacts when no Redis is configured (see sql/oidc-adapter.ts). */
export interface OidcArtifactsTable {
  model: string;
  id: string;
  /** The payload without `consumed`: consumed_at is the one source of truth for that. */
  payload: JSONColumnType<Record<string, unknown>, string, string>;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  /** Null: never expires. */
  expires_at: NullableTimestamp;
  consumed_at: NullableTimestamp;
  /** The mark of the consume that set consumed_at, for the request that made it to release it. */
  consumed_by: string | null;
}

/** KeyValueStore entries when no Redis is configured (see sql/key-value.ts). */
export interface KvEntriesTable {
  key: string;
  // Any JSON value (strings and numbers too), so not kysely's JSONColumnType (objects only).
  value: ColumnType<unknown, string, string>;
  expires_at: Timestamp;
}

export interface Database {
  accounts: AccountsTable;
  identities: IdentitiesTable;
  oidc_artifacts: OidcArtifactsTable;
  kv_entries: KvEntriesTable;
  avatars: AvatarsTable;
  account_artifacts: AccountArtifactsTable;
  account_deletions: AccountDeletionsTable;
  account_cleanups: AccountCleanupsTable;
  account_event_deliveries: AccountEventDeliveriesTable;
  consents: ConsentsTable;
}
