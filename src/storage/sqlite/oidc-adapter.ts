import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { destroyGraceSeconds, leavesTombstone, SESSION_TOMBSTONE_SECONDS } from '../destroy-grace.ts';
import type { ReleasableAdapter } from '../ports.ts';
import { artifactColumns, withConsumed } from '../sql/artifact-columns.ts';
import type { SqlOidcAdapter, SqlOidcAdapterOptions } from '../sql/oidc-adapter.ts';
import { startSweeper } from '../sql/sweeper.ts';
import { sqliteSweeper } from './sweeper.ts';
import type { WriteBatch } from './write-batch.ts';

/**
 * oidc-provider artifacts in the embedded setup's SQLite file (./database.ts), with the SQL
 * adapter's semantics (../sql/oidc-adapter.ts): expired rows are invisible to every read and deleted
 * by a periodic sweeper, `consumed` lives in consumed_at, destroy() of an Interaction only moves
 * expires_at up to a grace, destroy() of a Session leaves its row as a tombstone that upsert
 * respects. The statements are prepared once, for every model; the writes join the file's group
 * commit (`writes`, ./write-batch.ts).
 */
export function createSqliteOidcAdapter(
  database: DatabaseSync,
  writes: WriteBatch,
  options: SqlOidcAdapterOptions = {},
): SqlOidcAdapter {
  const now = options.now ?? (() => new Date());
  const statements = prepare(database, writes);
  const sweepAt = sqliteSweeper(writes, 'oidc_artifacts');
  const sweep = () => sweepAt(now().getTime());
  const stop = startSweeper(sweep, options);
  return { factory: (model) => createAdapter(statements, model, () => now().getTime()), sweep, close: stop };
}

type Statements = ReturnType<typeof prepare>;

function prepare(database: DatabaseSync, writes: WriteBatch) {
  const visible = '(expires_at is null or expires_at > ?)';
  const find = (column: 'id' | 'uid' | 'user_code', also = '') =>
    database.prepare(
      `select payload, consumed_at from oidc_artifacts where model = ? and ${column} = ? and ${visible} ${also} limit 1`,
    );
  const onConflict = `on conflict (model, id) do update set
        payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
        user_code = excluded.user_code, expires_at = excluded.expires_at,
        consumed_at = excluded.consumed_at`;
  return {
    findById: find('id'),
    findByUid: find('uid'),
    findByUserCode: find('user_code'),
    upsert: writes.prepare(`insert into oidc_artifacts
        (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
      values (?, ?, ?, ?, ?, ?, ?, ?)
      ${onConflict}`),
    // A Session's, leaving an unexpired tombstone (its destroyed row, consumed_at set) as it is (?9
    // is now), as the SQL adapter does (../sql/oidc-adapter.ts).
    upsertUnlessDestroyed: writes.prepare(`insert into oidc_artifacts
        (model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
      values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
      ${onConflict}
      where oidc_artifacts.consumed_at is null or oidc_artifacts.expires_at <= ?9`),
    // ?3 the tombstone's end, ?4 now.
    tombstone: writes.prepare(`insert into oidc_artifacts (model, id, payload, expires_at, consumed_at)
      values (?1, ?2, '{}', ?3, ?4)
      on conflict (model, id) do update set payload = excluded.payload, grant_id = null, uid = null,
        user_code = null, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at`),
    // A Session by id, never its tombstone.
    findLiveById: find('id', 'and consumed_at is null'),
    consume: writes.prepare(`update oidc_artifacts set consumed_at = ?3, consumed_by = ?4
      where model = ?1 and id = ?2 and consumed_at is null and (expires_at is null or expires_at > ?3)`),
    // Only the consume that bears the mark (?3), never a tombstone's consumed_at.
    release: writes.prepare(`update oidc_artifacts set consumed_at = null, consumed_by = null
      where model = ?1 and id = ?2 and consumed_by = ?3`),
    destroy: writes.prepare('delete from oidc_artifacts where model = ? and id = ?'),
    // PostgreSQL's least(expires_at, $3) of the SQL adapter, which ends a null (endless) life too.
    destroyAfterGrace: writes.prepare(`update oidc_artifacts
      set expires_at = case when expires_at is null or expires_at > ?3 then ?3 else expires_at end
      where model = ?1 and id = ?2`),
    revokeByGrantId: writes.prepare('delete from oidc_artifacts where grant_id = ?'),
  };
}

interface ArtifactRow {
  payload: string;
  consumed_at: number | null;
}

function createAdapter(statements: Statements, model: string, now: () => number): ReleasableAdapter {
  const grace = destroyGraceSeconds(model);
  const tombstone = leavesTombstone(model);
  const find = async (statement: StatementSync, value: string) => {
    const row = statement.get(model, value, now()) as ArtifactRow | undefined;
    return row && decode(row);
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
        expiresIn === undefined ? null : now() + expiresIn * 1000,
        row.consumedAt,
      ] as const;
      if (tombstone) statements.upsertUnlessDestroyed.run(...values, now());
      else statements.upsert.run(...values);
    },

    find: (id) => find(tombstone ? statements.findLiveById : statements.findById, id),

    findByUid: (uid) => find(statements.findByUid, uid),

    findByUserCode: (userCode) => find(statements.findByUserCode, userCode),

    async consume(id, mark) {
      // One UPDATE, run to completion before any other request's: of concurrent consumers exactly one changes the row.
      const { changes } = statements.consume.run(model, id, now(), mark ?? null);
      if (Number(changes) === 0) throw new errors.InvalidGrant(`${model} already consumed`);
    },

    async release(id, mark) {
      statements.release.run(model, id, mark);
    },

    async destroy(id) {
      if (tombstone) statements.tombstone.run(model, id, now() + SESSION_TOMBSTONE_SECONDS * 1000, now());
      else if (grace === undefined) statements.destroy.run(model, id);
      else statements.destroyAfterGrace.run(model, id, now() + grace * 1000);
    },

    async revokeByGrantId(grantId) {
      // Every grantable model at once, as the memory adapter's shared grant index does.
      statements.revokeByGrantId.run(grantId);
    },
  };
}

function decode(row: ArtifactRow): AdapterPayload {
  return withConsumed(JSON.parse(row.payload) as AdapterPayload, row.consumed_at);
}
