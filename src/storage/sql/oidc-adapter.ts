import { type ExpressionBuilder, type Kysely, sql } from 'kysely';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { destroyGraceSeconds } from '../destroy-grace.ts';
import { GRANTABLE_MODELS } from '../grantable.ts';
import type { AdapterFactory } from '../ports.ts';
import type { Database } from '../schema.ts';
import { jsonb } from './json.ts';
import { type SweeperOptions, startSweeper, sweepExpired } from './sweeper.ts';

export interface SqlOidcAdapterOptions extends SweeperOptions {
  /** Injected clock (tests); the default is the system clock. */
  now?: () => Date;
}

export interface SqlOidcAdapter {
  factory: AdapterFactory;
  /** Deletes expired artifacts now; resolves to how many. The timer calls this too. */
  sweep(): Promise<number>;
  /** Stops the sweeper. The Kysely belongs to the caller and stays open. */
  close(): void;
}

/**
 * oidc-provider artifacts in the `oidc_artifacts` table, on PostgreSQL or PGlite alike.
 * Expired rows are invisible to every read and deleted by a periodic sweeper; `consumed`
 * lives in consumed_at, set by one conditional UPDATE so that of concurrent consumers
 * exactly one succeeds. destroy() of an Interaction only moves expires_at up to a grace.
 */
export function createSqlOidcAdapter(
  db: Kysely<Database>,
  options: SqlOidcAdapterOptions = {},
): SqlOidcAdapter {
  const now = options.now ?? (() => new Date());
  const sweep = () => sweepExpired(db, 'oidc_artifacts', now(), options);
  const stop = startSweeper(sweep, options);
  return { factory: (model) => createAdapter(db, model, now), sweep, close: stop };
}

function createAdapter(db: Kysely<Database>, model: string, now: () => Date): Adapter {
  const grace = destroyGraceSeconds(model);
  const visible = (at: Date) => (eb: ExpressionBuilder<Database, 'oidc_artifacts'>) =>
    eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', at)]);

  const findWhere = async (column: 'id' | 'uid' | 'user_code', value: string) => {
    const row = await db
      .selectFrom('oidc_artifacts')
      .select(['payload', 'consumed_at'])
      .where('model', '=', model)
      .where(column, '=', value)
      .where(visible(now()))
      .limit(1)
      .executeTakeFirst();
    return row && decode(row);
  };

  return {
    async upsert(id, payload, expiresIn) {
      const { consumed, ...rest } = payload;
      const row = {
        model,
        id,
        payload: jsonb(rest),
        grant_id: GRANTABLE_MODELS.has(model) ? (payload.grantId ?? null) : null,
        uid: payload.uid ?? null,
        user_code: payload.userCode ?? null,
        expires_at: expiresIn === undefined ? null : new Date(now().getTime() + expiresIn * 1000),
        consumed_at: consumed ? new Date(Number(consumed) * 1000) : null,
      };
      await db
        .insertInto('oidc_artifacts')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['model', 'id']).doUpdateSet((eb) => ({
            payload: eb.ref('excluded.payload'),
            grant_id: eb.ref('excluded.grant_id'),
            uid: eb.ref('excluded.uid'),
            user_code: eb.ref('excluded.user_code'),
            expires_at: eb.ref('excluded.expires_at'),
            consumed_at: eb.ref('excluded.consumed_at'),
          })),
        )
        .execute();
    },

    find: (id) => findWhere('id', id),

    findByUid: (uid) => findWhere('uid', uid),

    findByUserCode: (userCode) => findWhere('user_code', userCode),

    async consume(id) {
      const at = now();
      // PostgreSQL re-checks the WHERE on the row a concurrent consumer just updated, so
      // exactly one UPDATE matches; the rest see consumed_at set and return nothing.
      const consumed = await db
        .updateTable('oidc_artifacts')
        .set({ consumed_at: at })
        .where('model', '=', model)
        .where('id', '=', id)
        .where('consumed_at', 'is', null)
        .where(visible(at))
        .returning('id')
        .executeTakeFirst();
      if (!consumed) throw new errors.InvalidGrant(`${model} already consumed`);
    },

    async destroy(id) {
      if (grace === undefined) {
        await db.deleteFrom('oidc_artifacts').where('model', '=', model).where('id', '=', id).execute();
        return;
      }
      // An Interaction lives on for a grace (../destroy-grace.ts); least() keeps a shorter life and
      // ends a null (endless) one. The sweeper deletes the row once it is over.
      const until = new Date(now().getTime() + grace * 1000);
      await db
        .updateTable('oidc_artifacts')
        .set({ expires_at: sql<Date>`least(expires_at, ${until})` })
        .where('model', '=', model)
        .where('id', '=', id)
        .execute();
    },

    async revokeByGrantId(grantId) {
      // Every grantable model at once, as the memory adapter's shared grant index does.
      await db.deleteFrom('oidc_artifacts').where('grant_id', '=', grantId).execute();
    },
  };
}

function decode(row: { payload: Record<string, unknown>; consumed_at: Date | null }): AdapterPayload {
  const payload = { ...row.payload } as AdapterPayload;
  if (row.consumed_at !== null) payload.consumed = Math.floor(row.consumed_at.getTime() / 1000);
  return payload;
}
