import type { Kysely } from 'kysely';
import type { AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { destroyGraceSeconds, leavesTombstone, SESSION_TOMBSTONE_SECONDS } from '../destroy-grace.ts';
import type { ReleasableAdapter } from '../ports.ts';
import type { Database } from '../schema.ts';
import { artifactColumns, withConsumed } from './artifact-columns.ts';
import { runStatement } from './statement.ts';
import { type SweeperOptions, startSweeper, sweepExpired } from './sweeper.ts';

export interface SqlOidcAdapterOptions extends SweeperOptions {
  /** Injected clock (tests); the default is the system clock. */
  now?: () => Date;
}

export interface SqlOidcAdapter {
  factory: (model: string) => ReleasableAdapter;
  /** Deletes expired artifacts now; resolves to how many. The timer calls this too. */
  sweep(): Promise<number>;
  /** Stops the sweeper. The Kysely belongs to the caller and stays open. */
  close(): void;
}

/**
 * oidc-provider artifacts in the `oidc_artifacts` table in PostgreSQL (the tests also run them on PGlite).
 * Expired rows are invisible to every read and deleted by a periodic sweeper; `consumed`
 * lives in consumed_at, set by one conditional UPDATE so that of concurrent consumers
 * exactly one succeeds. destroy() of an Interaction only moves expires_at up to a grace; destroy()
 * of a Session leaves its row as a tombstone (no payload, consumed_at set) that upsert respects.
 */
export function createSqlOidcAdapter(
  db: Kysely<Database>,
  options: SqlOidcAdapterOptions = {},
): SqlOidcAdapter {
  const now = options.now ?? (() => new Date());
  const sweep = () => sweepExpired(db, 'oidc_artifacts', now());
  const stop = startSweeper(sweep, options);
  return { factory: (model) => createAdapter(db, model, now), sweep, close: stop };
}

const ON_CONFLICT = `on conflict (model, id) do update set
      payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
      user_code = excluded.user_code, expires_at = excluded.expires_at,
      consumed_at = excluded.consumed_at`;

/**
 * The statements every artifact call runs, as SQL text: kysely's builder spent about 45
 * microseconds composing and compiling each one again per call, where the prepared statement then
 * took about 70 to run on PGlite (5 Dec; a login runs about twenty). A visible row has no expiry
 * or one still ahead.
 */

const STATEMENTS = {
  findById: findWhere('id'),
  findByUid: findWhere('uid'),
  findByUserCode: findWhere('user_code'),
  upsert: `insert into oidc_artifacts
      (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
    values ($1, $2, cast($3 as json), $4, $5, $6, $7, $8)
    ${ON_CONFLICT}`,
  // A Session's: its destroyed row is its tombstone (consumed_at set, which nothing else sets on a
  // session), and the upsert leaves an unexpired one as it is ($9 is now). Both write the one row
  // (model, id), inserting or updating it: whichever comes second waits for the first's row lock
  // and reads the row as the first left it, so no order brings a destroyed session back.
  upsertUnlessDestroyed: `insert into oidc_artifacts
      (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
    values ($1, $2, cast($3 as json), $4, $5, $6, $7, $8)
    ${ON_CONFLICT}
    where oidc_artifacts.consumed_at is null or oidc_artifacts.expires_at <= $9`,
  // $3 the tombstone's end, $4 now.
  tombstone: `insert into oidc_artifacts (model, id, payload, expires_at, consumed_at)
    values ($1, $2, cast('{}' as json), $3, $4)
    on conflict (model, id) do update set payload = excluded.payload, grant_id = null, uid = null,
      user_code = null, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`,
  // A Session by id, never its tombstone.
  findLiveById: findWhere('id', 'and consumed_at is null'),
  // PostgreSQL re-checks the WHERE on the row a concurrent consumer just updated, so exactly one
  // UPDATE matches; the rest see consumed_at set and return nothing.
  consume: `update oidc_artifacts set consumed_at = $3, consumed_by = $4
    where model = $1 and id = $2 and consumed_at is null and (expires_at is null or expires_at > $3)
    returning id`,
  // Only the consume that bears the mark ($3), never a tombstone's consumed_at.
  release: `update oidc_artifacts set consumed_at = null, consumed_by = null
    where model = $1 and id = $2 and consumed_by = $3`,
  destroy: 'delete from oidc_artifacts where model = $1 and id = $2',
  // An Interaction lives on for a grace (../destroy-grace.ts); least() keeps a shorter life and ends
  // a null (endless) one. The sweeper deletes the row once it is over.
  destroyAfterGrace:
    'update oidc_artifacts set expires_at = least(expires_at, $3) where model = $1 and id = $2',
};

function findWhere(column: 'id' | 'uid' | 'user_code', also = ''): string {
  return `select payload, consumed_at from oidc_artifacts
    where model = $1 and ${column} = $2 and (expires_at is null or expires_at > $3) ${also}
    limit 1`;
}

interface ArtifactRow {
  payload: Record<string, unknown>;
  consumed_at: Date | null;
}

/**
 * Whether a value can be in a text column at all. PostgreSQL's text refuses NUL, and a query
 * naming one fails rather than matching nothing. The values looked up come from requests (a
 * client_id, a token, a code, an interaction's uid), so `%00` in any of them was a server error:
 * no id, uid or user code holding NUL was ever stored, and such a lookup finds nothing. (The
 * other calls name artifacts that were found first.)
 */
const storable = (value: string) => !value.includes('\0');

function createAdapter(db: Kysely<Database>, model: string, now: () => Date): ReleasableAdapter {
  const grace = destroyGraceSeconds(model);
  const tombstone = leavesTombstone(model);
  const find = async (statement: string, value: string) => {
    if (!storable(value)) return undefined;
    const { rows } = await runStatement<ArtifactRow>(db, statement, [model, value, now()]);
    return rows[0] && decode(rows[0]);
  };

  return {
    async upsert(id, payload, expiresIn) {
      const row = artifactColumns(model, payload);
      const values = [
        model,
        id,
        row.payload,
        row.grantId,
        row.uid,
        row.userCode,
        expiresIn === undefined ? null : new Date(now().getTime() + expiresIn * 1000),
        row.consumedAt === null ? null : new Date(row.consumedAt),
      ];
      if (tombstone) await runStatement(db, STATEMENTS.upsertUnlessDestroyed, [...values, now()]);
      else await runStatement(db, STATEMENTS.upsert, values);
    },

    find: (id) => find(tombstone ? STATEMENTS.findLiveById : STATEMENTS.findById, id),

    findByUid: (uid) => find(STATEMENTS.findByUid, uid),

    findByUserCode: (userCode) => find(STATEMENTS.findByUserCode, userCode),

    async consume(id, mark) {
      const { rows } = await runStatement(db, STATEMENTS.consume, [model, id, now(), mark ?? null]);
      if (rows.length === 0) throw new errors.InvalidGrant(`${model} already consumed`);
    },

    async release(id, mark) {
      await runStatement(db, STATEMENTS.release, [model, id, mark]);
    },

    async destroy(id) {
      if (tombstone) {
        const at = now();
        const until = new Date(at.getTime() + SESSION_TOMBSTONE_SECONDS * 1000);
        await runStatement(db, STATEMENTS.tombstone, [model, id, until, at]);
        return;
      }
      if (grace === undefined) {
        await runStatement(db, STATEMENTS.destroy, [model, id]);
        return;
      }
      await runStatement(db, STATEMENTS.destroyAfterGrace, [
        model,
        id,
        new Date(now().getTime() + grace * 1000),
      ]);
    },

    async revokeByGrantId(grantId) {
      // Every grantable model at once, as the memory adapter's shared grant index does.
      await db.deleteFrom('oidc_artifacts').where('grant_id', '=', grantId).execute();
    },
  };
}

function decode(row: ArtifactRow): AdapterPayload {
  return withConsumed({ ...row.payload } as AdapterPayload, row.consumed_at?.getTime() ?? null);
}
