import type { Kysely } from 'kysely';
import type { KeyValueStore } from '../ports.ts';
import type { Database } from '../schema.ts';
import { jsonText } from './json.ts';
import { runStatement } from './statement.ts';
import { type SweeperOptions, startSweeper, sweepExpired } from './sweeper.ts';

export interface SqlKeyValueStoreOptions extends SweeperOptions {
  /** Injected clock (tests); the default is the system clock. */
  now?: () => Date;
}

export interface SqlKeyValueStore extends KeyValueStore {
  /** Deletes expired entries now; resolves to how many. The timer calls this too. */
  sweep(): Promise<number>;
  /** Stops the sweeper. The Kysely belongs to the caller and stays open. */
  close(): void;
}

/**
 * The store's statements as SQL text, as the artifact adapter's are (./oidc-adapter.ts, where the
 * builder's cost per call is measured): one login reads and writes several entries.
 */
const STATEMENTS = {
  put: `insert into kv_entries (key, value, expires_at) values ($1, cast($2 as json), $3)
    on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at`,
  // An expired entry counts as absent: replace it. The row lock taken by ON CONFLICT makes
  // concurrent callers queue, and each re-checks the expiry after the wait.
  putIfAbsent: `insert into kv_entries (key, value, expires_at) values ($1, cast($2 as json), $3)
    on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at
      where kv_entries.expires_at <= $4
    returning key`,
  get: 'select value from kv_entries where key = $1 and expires_at > $2',
  take: 'delete from kv_entries where key = $1 returning value, expires_at',
  delete: 'delete from kv_entries where key = $1',
  // A json column keeps the text it was given, so the stored text is the value's JSON as put.
  deleteIfEquals: `delete from kv_entries where key = $1 and value::text = $2 and expires_at > $3
    returning key`,
};

/**
 * KeyValueStore in the `kv_entries` table (PostgreSQL). Expired entries read as
 * missing and are deleted by a periodic sweeper. take and deleteIfEquals are one DELETE ...
 * RETURNING each and putIfAbsent one INSERT ... ON CONFLICT, so all are atomic across instances.
 */
export function createSqlKeyValueStore(
  db: Kysely<Database>,
  options: SqlKeyValueStoreOptions = {},
): SqlKeyValueStore {
  const now = options.now ?? (() => new Date());
  const expiry = (ttl: number) => new Date(now().getTime() + ttlMilliseconds(ttl));

  const sweep = () => sweepExpired(db, 'kv_entries', now());
  const stop = startSweeper(sweep, options);

  return {
    async put(key, value, ttl) {
      await runStatement(db, STATEMENTS.put, [key, jsonText(value), expiry(ttl)]);
    },

    async putIfAbsent(key, value, ttl) {
      const { rows } = await runStatement(db, STATEMENTS.putIfAbsent, [
        key,
        jsonText(value),
        expiry(ttl),
        now(),
      ]);
      return rows.length > 0;
    },

    async get<T>(key: string) {
      const { rows } = await runStatement<{ value: unknown }>(db, STATEMENTS.get, [key, now()]);
      return rows[0]?.value as T | undefined;
    },

    async take<T>(key: string) {
      // Deleting an expired entry here is fine (it is gone either way); it just is not returned.
      const { rows } = await runStatement<{ value: unknown; expires_at: Date }>(db, STATEMENTS.take, [key]);
      const row = rows[0];
      if (!row || row.expires_at.getTime() <= now().getTime()) return undefined;
      return row.value as T;
    },

    async delete(key) {
      await runStatement(db, STATEMENTS.delete, [key]);
    },

    async deleteIfEquals(key, value) {
      const { rows } = await runStatement(db, STATEMENTS.deleteIfEquals, [key, jsonText(value), now()]);
      return rows.length > 0;
    },

    sweep,
    close: stop,
  };
}

export function ttlMilliseconds(ttl: number): number {
  if (!Number.isFinite(ttl) || ttl <= 0) throw new RangeError('KeyValueStore TTLs must be positive seconds');
  return Math.ceil(ttl) * 1000;
}
