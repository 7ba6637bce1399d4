import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { openSqliteFile } from './file.ts';
import { SQLITE_NOW_MS, sqliteKysely } from './kysely-dialect.ts';

/** The embedded setup's file for accounts (and what hangs off them), in the data directory. */
export function embeddedAccountsFile(dataDir: string): string {
  return join(dataDir, 'accounts.sqlite');
}

/** A random version 4 UUID, as PostgreSQL's gen_random_uuid() makes them (ids are UUIDs everywhere). */
const UUID = `(lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
  || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)
  || '-' || hex(randomblob(6))))`;

/**
 * The schema, by version (PRAGMA user_version): the PostgreSQL migrations' accounts tables
 * (../migrations/) in SQLite's terms, one version per change since the first (6 Dec 2026).
 * Append a version to change it; never edit one that has shipped. A change to the accounts tables
 * needs both: a migration for PostgreSQL and a version here.
 */
export const ACCOUNTS_SCHEMA: readonly string[] = [
  `create table accounts (
     id text primary key default ${UUID},
     subject text not null unique,
     nickname text,
     avatar_url text,
     created_at integer not null default ${SQLITE_NOW_MS},
     updated_at integer not null default ${SQLITE_NOW_MS},
     last_login_at integer not null default ${SQLITE_NOW_MS},
     phone_number text,
     phone_number_verified integer not null default 0,
     phone_verified_at integer
   );
   create table identities (
     appid text not null,
     openid text not null,
     account_id text not null references accounts (id) on delete cascade,
     kind text not null check (kind in ('website', 'official_account', 'mini_program')),
     unionid text,
     created_at integer not null default ${SQLITE_NOW_MS},
     updated_at integer not null default ${SQLITE_NOW_MS},
     last_login_at integer not null default ${SQLITE_NOW_MS},
     primary key (appid, openid)
   );
   create index identities_unionid_idx on identities (unionid);
   create index identities_account_id_idx on identities (account_id);
   create table avatars (
     account_id text primary key references accounts (id) on delete cascade,
     source_url text not null,
     content_type text not null,
     etag text not null,
     bytes blob not null,
     updated_at integer not null default ${SQLITE_NOW_MS}
   );
   create table account_artifacts (
     model text not null check (model in ('Grant', 'Session')),
     id text not null,
     subject text not null,
     client_id text,
     expires_at integer,
     created_at integer not null default ${SQLITE_NOW_MS},
     primary key (model, id)
   );
   create index account_artifacts_subject_idx on account_artifacts (subject, model);
   create index account_artifacts_expires_at_idx on account_artifacts (expires_at);
   create table account_deletions (
     id text primary key default ${UUID},
     deleted_at integer not null,
     requested_by text not null check (requested_by in ('person', 'operator')),
     identities integer not null,
     grants_revoked integer not null,
     sessions_ended integer not null
   );
   create table account_event_deliveries (
     id text primary key default ${UUID},
     client_id text not null,
     event_type text not null,
     events_uri text not null,
     token text not null,
     attempts integer not null default 0,
     next_attempt_at integer not null default ${SQLITE_NOW_MS},
     last_error text,
     created_at integer not null default ${SQLITE_NOW_MS}
   );
   create index account_event_deliveries_due_idx on account_event_deliveries (next_attempt_at);
   create table consents (
     account_id text not null references accounts (id) on delete cascade,
     client_id text not null,
     scopes text not null,
     created_at integer not null default ${SQLITE_NOW_MS},
     updated_at integer not null default ${SQLITE_NOW_MS},
     primary key (account_id, client_id)
   );`,
  // 2026-12-06-01-account-profile-updated-at. SQLite adds a column with a constant default only, so
  // this one has none: every insert names it (AccountsTable makes the type checker insist).
  `alter table accounts add column profile_updated_at integer;
   update accounts set profile_updated_at = updated_at;`,
  // 2026-12-06-03-lookup-indexes.
  `create index accounts_phone_number_idx on accounts (phone_number);
   create index identities_openid_idx on identities (openid);`,
  // 2026-12-07-01-account-cleanups.
  `create table account_cleanups (
     subject text primary key,
     due_at integer not null,
     attempts integer not null default 0
   );
   create index account_cleanups_due_at_idx on account_cleanups (due_at);`,
];

/**
 * Opens (creating when absent) the embedded setup's accounts file, with its schema up to date, as a
 * Kysely (./kysely-dialect.ts). Locked to this process until the Kysely is destroyed (./file.ts).
 *
 * Why SQLite rather than PGlite, where the embedded accounts lived until 6 Dec 2026: a returning
 * person's login statement cost about 420 microseconds of the server's core in PGlite and its
 * equivalent about 50 here, and PGlite (PostgreSQL compiled to WebAssembly) held some 250 MB of
 * the server's memory (bench/FINDINGS.md). Data directories of before are copied over once
 * (./from-pglite.ts).
 */
export async function openAccountsDatabase(dataDir: string): Promise<Kysely<Database>> {
  return sqliteKysely(await openSqliteFile(embeddedAccountsFile(dataDir), ACCOUNTS_SCHEMA));
}
