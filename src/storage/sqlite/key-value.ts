import type { DatabaseSync } from 'node:sqlite';
import { jsonText } from '../sql/json.ts';
import { type SqlKeyValueStore, type SqlKeyValueStoreOptions, ttlMilliseconds } from '../sql/key-value.ts';
import { startSweeper } from '../sql/sweeper.ts';
import { sqliteSweeper } from './sweeper.ts';
import type { WriteBatch } from './write-batch.ts';

/**
 * KeyValueStore in the embedded setup's SQLite file (./database.ts). Expired entries read as
 * missing and are deleted by a periodic sweeper. take and deleteIfEquals are one DELETE ... RETURNING
 * each and putIfAbsent one INSERT ... ON CONFLICT, each atomic. The writes join the file's group commit (`writes`,
 * ./write-batch.ts).
 */
export function createSqliteKeyValueStore(
  database: DatabaseSync,
  writes: WriteBatch,
  options: SqlKeyValueStoreOptions = {},
): SqlKeyValueStore {
  const now = () => (options.now ? options.now().getTime() : Date.now());
  const statements = {
    put: writes.prepare(`insert into kv_entries (key, value, expires_at) values (?, ?, ?)
      on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at`),
    // An expired entry counts as absent: replace it.
    putIfAbsent: writes.prepare(`insert into kv_entries (key, value, expires_at) values (?1, ?2, ?3)
      on conflict (key) do update set value = excluded.value, expires_at = excluded.expires_at
        where kv_entries.expires_at <= ?4
      returning key`),
    get: database.prepare('select value from kv_entries where key = ? and expires_at > ?'),
    take: writes.prepare('delete from kv_entries where key = ? returning value, expires_at'),
    delete: writes.prepare('delete from kv_entries where key = ?'),
    deleteIfEquals: writes.prepare(
      'delete from kv_entries where key = ?1 and value = ?2 and expires_at > ?3 returning key',
    ),
  };
  const sweepAt = sqliteSweeper(writes, 'kv_entries');
  const sweep = () => sweepAt(now());
  const stop = startSweeper(sweep, options);

  return {
    async put(key, value, ttl) {
      statements.put.run(key, jsonText(value), now() + ttlMilliseconds(ttl));
    },

    async putIfAbsent(key, value, ttl) {
      const at = now();
      return statements.putIfAbsent.get(key, jsonText(value), at + ttlMilliseconds(ttl), at) !== undefined;
    },

    async get<T>(key: string) {
      const row = statements.get.get(key, now()) as { value: string } | undefined;
      return row && (JSON.parse(row.value) as T);
    },

    async take<T>(key: string) {
      // Deleting an expired entry here is fine (it is gone either way); it just is not returned.
      const row = statements.take.get(key) as { value: string; expires_at: number } | undefined;
      if (!row || row.expires_at <= now()) return undefined;
      return JSON.parse(row.value) as T;
    },

    async delete(key) {
      statements.delete.run(key);
    },

    async deleteIfEquals(key, value) {
      return statements.deleteIfEquals.get(key, jsonText(value), now()) !== undefined;
    },

    sweep,
    close: stop,
  };
}
