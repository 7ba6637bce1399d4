import type { DatabaseSync } from 'node:sqlite';
import type { Kysely } from 'kysely';
import type { Adapter } from 'oidc-provider';
import type { RedisClient } from './redis/scripts.ts';
import type { Database } from './schema.ts';
import type { WriteBatch } from './sqlite/write-batch.ts';

/**
 * Short-lived records shared by every instance: WeChat `state`, duplicate-callback
 * results, mini-program session keys, WeChat app access tokens.
 *
 * Miss semantics, decided once for every implementation: a missing or expired key
 * reads as `undefined`; methods throw only on I/O failure.
 * Values are JSON-serialisable; keys are opaque strings chosen by callers
 * (implementations add their own prefix).
 */
export interface KeyValueStore {
  /** Stores (or overwrites) `value` under `key` for `ttlSeconds`. */
  put(key: string, value: unknown, ttlSeconds: number): Promise<void>;
  /** Stores only when the key is absent; true when this call stored it. Atomic across instances. */
  putIfAbsent(key: string, value: unknown, ttlSeconds: number): Promise<boolean>;
  /** Reads without consuming. */
  get<T>(key: string): Promise<T | undefined>;
  /**
   * Reads and removes in one atomic step: of any number of concurrent callers
   * (on any instance) exactly one gets the value, the rest get `undefined`.
   */
  take<T>(key: string): Promise<T | undefined>;
  delete(key: string): Promise<void>;
  /**
   * Removes the key only while it still holds `value` (the same JSON); true when this call removed
   * it. Atomic across instances: a value another caller wrote meanwhile stays.
   */
  deleteIfEquals(key: string, value: unknown): Promise<boolean>;
}

/** oidc-provider's adapter constructor argument: one adapter per model name. */
export type AdapterFactory = (modelName: string) => Adapter;

/**
 * An adapter whose consume can be undone by the request that made it, when that request then
 * failed before answering (src/oidc/single-use.ts): the consume carries a mark, and release()
 * clears the consume bearing that mark, never another's (all three adapters: Redis keeps the
 * mark in the artifact's hash, SQL in consumed_by). In Redis a consume sent again with its mark,
 * as ioredis does after a reconnection when its answer was lost, counts as the same consume.
 */
export interface ReleasableAdapter extends Adapter {
  consume(id: string, mark?: string): Promise<void>;
  release(id: string, mark: string): Promise<void>;
}

export type StorageKind = 'postgres' | 'redis' | 'embedded';

/** Everything the rest of the server needs from storage, opened once by the composition root. */
export interface Stores {
  /** Accounts and identities (PostgreSQL, or SQLite when embedded). */
  db: Kysely<Database>;
  kv: KeyValueStore;
  /** oidc-provider artifacts (Redis, or SQL when REDIS_URL is unset). */
  oidcAdapter: AdapterFactory;
  kinds: { accounts: StorageKind; artifacts: StorageKind };
  /** The Redis connection the artifacts use, when they are in Redis (the rate limits count on it). */
  redis?: RedisClient;
  /** The embedded setup's SQLite file of artifacts (./sqlite/database.ts), which it keeps locked: tests read it here. */
  sqlite?: DatabaseSync;
  /**
   * The embedded artifacts file's group commit (./sqlite/write-batch.ts): the HTTP server commits
   * it before every answer (src/http/committed-answers.ts).
   */
  writes?: WriteBatch;
  /**
   * After an account's deletion: clears what deleted rows leave behind in the embedded setup's files
   * (their write-ahead logs, ./sqlite/file.ts scrubWal). Absent where a server holds the data
   * (PostgreSQL and Redis reclaim it themselves: VACUUM, README "Deletion").
   */
  scrub?(): Promise<void>;
  /** Cheap liveness probes for readiness checks; resolve false rather than throw. */
  ping(): Promise<{ database: boolean; cache: boolean }>;
  close(): Promise<void>;
}
