import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { openSqliteFile } from './file.ts';

/** The embedded setup's file for oidc-provider artifacts and short-lived entries, in the data directory. */
export function embeddedArtifactsFile(dataDir: string): string {
  return join(dataDir, 'artifacts.sqlite');
}

/**
 * The schema, by version (PRAGMA user_version). Times are milliseconds since the epoch; payloads
 * and values are JSON text. Append a version to change it; never edit one that has shipped.
 */
const SCHEMA: readonly string[] = [
  `create table oidc_artifacts (
     model text not null,
     id text not null,
     payload text not null,
     grant_id text,
     uid text,
     user_code text,
     expires_at integer,
     consumed_at integer,
     primary key (model, id)
   );
   create index oidc_artifacts_grant_id on oidc_artifacts (grant_id) where grant_id is not null;
   create index oidc_artifacts_uid on oidc_artifacts (uid) where uid is not null;
   create index oidc_artifacts_user_code on oidc_artifacts (user_code) where user_code is not null;
   create index oidc_artifacts_expires_at on oidc_artifacts (expires_at) where expires_at is not null;
   create table kv_entries (
     key text primary key,
     value text not null,
     expires_at integer not null
   );
   create index kv_entries_expires_at on kv_entries (expires_at);`,
  // 2026-12-07-02-artifact-consumer: the mark of the consume that spent an artifact.
  'alter table oidc_artifacts add column consumed_by text;',
];

/**
 * Opens (creating when absent) the SQLite file that holds the embedded setup's oidc-provider
 * artifacts and key-value entries, brings its schema up to date, and keeps the file locked to this
 * process until it is closed (./file.ts: locking, write-ahead log, durability).
 *
 * Why SQLite (Node's built-in node:sqlite) and not PGlite, where the embedded setup first kept
 * everything: these are a login's many small reads and writes (about 15 per login). On PGlite each
 * statement cost 70 to 130 microseconds of the server's core (PostgreSQL in WebAssembly): the bare
 * engine's embedded login took 3.8 ms of CPU then and 1.6 to 2.0 now. On SQLite a write costs about
 * 20 and a read 3 on a quiet core (6 Dec, bench/FINDINGS.md). Calls are synchronous, so each
 * statement is atomic with respect to every other request.
 */
export async function openArtifactsDatabase(dataDir: string): Promise<DatabaseSync> {
  return openSqliteFile(embeddedArtifactsFile(dataDir), SCHEMA, {
    checkpointPages: ARTIFACTS_CHECKPOINT_PAGES,
  });
}

/**
 * Pages written to the log between checkpoints (about 40 MB of log): ten times SQLite's default.
 * A login writes some 35 pages here, most of them the same few index and table pages again, and a
 * checkpoint copies each page once whatever its versions in the log, then flushes. Every 1,000
 * pages that was a checkpoint each 30 logins or so, with its reads, writes and flush on the event
 * loop; every 10,000 the logins' system time fell by a fifth and the login's p99 latency by half in
 * the bench (bench/FINDINGS.md, 6 Dec). What it costs: the log file stays at its largest size, and
 * a power cut can lose a few seconds more of sessions and tokens (people log in again). The
 * accounts file keeps SQLite's default: its writes are fewer and worth more.
 */
const ARTIFACTS_CHECKPOINT_PAGES = 10_000;
