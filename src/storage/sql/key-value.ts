import type { Kysely } from 'kysely';
import type { KeyValueStore } from '../ports.ts';
import type { Database } from '../schema.ts';
import { jsonb } from './json.ts';
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
 * KeyValueStore in the `kv_entries` table (PostgreSQL or PGlite). Expired entries read as
 * missing and are deleted by a periodic sweeper. take is one DELETE ... RETURNING and
 * putIfAbsent one INSERT ... ON CONFLICT, so both are atomic across instances.
 */
export function createSqlKeyValueStore(
  db: Kysely<Database>,
  options: SqlKeyValueStoreOptions = {},
): SqlKeyValueStore {
  const now = options.now ?? (() => new Date());
  const expiry = (ttl: number) => new Date(now().getTime() + ttlMilliseconds(ttl));

  const sweep = () => sweepExpired(db, 'kv_entries', now(), options);
  const stop = startSweeper(sweep, options);

  return {
    async put(key, value, ttl) {
      await db
        .insertInto('kv_entries')
        .values({ key, value: jsonb(value), expires_at: expiry(ttl) })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet((eb) => ({
            value: eb.ref('excluded.value'),
            expires_at: eb.ref('excluded.expires_at'),
          })),
        )
        .execute();
    },

    async putIfAbsent(key, value, ttl) {
      const stored = await db
        .insertInto('kv_entries')
        .values({ key, value: jsonb(value), expires_at: expiry(ttl) })
        // An expired entry counts as absent: replace it. The row lock taken by ON CONFLICT
        // makes concurrent callers queue, and each re-checks the expiry after the wait.
        .onConflict((oc) =>
          oc
            .column('key')
            .doUpdateSet((eb) => ({
              value: eb.ref('excluded.value'),
              expires_at: eb.ref('excluded.expires_at'),
            }))
            .where('kv_entries.expires_at', '<=', now()),
        )
        .returning('key')
        .executeTakeFirst();
      return stored !== undefined;
    },

    async get<T>(key: string) {
      const row = await db
        .selectFrom('kv_entries')
        .select('value')
        .where('key', '=', key)
        .where('expires_at', '>', now())
        .executeTakeFirst();
      return row?.value as T | undefined;
    },

    async take<T>(key: string) {
      // Deleting an expired entry here is fine (it is gone either way); it just is not returned.
      const row = await db
        .deleteFrom('kv_entries')
        .where('key', '=', key)
        .returning(['value', 'expires_at'])
        .executeTakeFirst();
      if (!row || row.expires_at.getTime() <= now().getTime()) return undefined;
      return row.value as T;
    },

    async delete(key) {
      await db.deleteFrom('kv_entries').where('key', '=', key).execute();
    },

    sweep,
    close: stop,
  };
}

function ttlMilliseconds(ttl: number): number {
  if (!Number.isFinite(ttl) || ttl <= 0) throw new RangeError('KeyValueStore TTLs must be positive seconds');
  return Math.ceil(ttl) * 1000;
}
