import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreparedPGliteDialect } from '../../src/storage/pglite-driver.ts';

// The embedded store's driver keeps statements prepared and talks PostgreSQL's protocol to PGlite
// itself; PGlite's own query() is the reference it must agree with.
describe('PGlite driver with prepared statements', () => {
  let pglite: PGlite;
  let db: Kysely<Record<string, Record<string, unknown>>>;

  beforeAll(async () => {
    pglite = await PGlite.create();
    db = new Kysely({ dialect: new PreparedPGliteDialect(pglite) });
    await sql`create table typed (
      id int primary key, label text, big bigint, ratio numeric, flag boolean, doc jsonb,
      at timestamptz, day date, raw bytea, tags text[], missing text)`.execute(db);
  });
  afterAll(async () => {
    await db.destroy();
  });

  it('writes and reads every column type as PGlite’s own query does', async () => {
    const row = {
      id: 1,
      label: 'ünïcode 微信 "quoted"',
      big: 9_007_199_254_740_993n,
      ratio: '12.50',
      flag: true,
      doc: sql`cast(${JSON.stringify({ nested: [1, 'two', null] })} as jsonb)`,
      at: new Date('2026-12-06T01:02:03.456Z'),
      day: '2026-12-06',
      raw: new Uint8Array([0, 1, 254, 255]),
      tags: sql`array[${'a'}, ${'b,c'}]`,
      missing: null,
    };
    await db.insertInto('typed').values(row).execute();
    const ours = await db.selectFrom('typed').selectAll().where('id', '=', 1).execute();
    const theirs = await pglite.query('select * from typed where id = $1', [1]);
    expect(ours).toEqual(theirs.rows);
    expect(ours[0]).toMatchObject({ label: row.label, flag: true, doc: { nested: [1, 'two', null] } });
    expect(ours[0]?.at).toEqual(row.at);
    expect(ours[0]?.raw).toEqual(row.raw);
  });

  it('counts the rows a statement changed', async () => {
    await db
      .insertInto('typed')
      .values([{ id: 10 }, { id: 11 }, { id: 12 }])
      .execute();
    const result = await db.updateTable('typed').set({ label: 'x' }).where('id', '>=', 10).executeTakeFirst();
    expect(result.numUpdatedRows).toBe(3n);
    const none = await db.deleteFrom('typed').where('id', '=', -1).executeTakeFirst();
    expect(none.numDeletedRows).toBe(0n);
  });

  it('throws PostgreSQL’s error and carries on with the next query', async () => {
    await db.insertInto('typed').values({ id: 20 }).execute();
    const duplicate = db.insertInto('typed').values({ id: 20 }).execute();
    await expect(duplicate).rejects.toMatchObject({ code: '23505' });
    const misspelt = sql`selec 1`.execute(db);
    await expect(misspelt).rejects.toMatchObject({ code: '42601' });
    // Not remembered as prepared: the same text fails the same way again.
    await expect(sql`selec 1`.execute(db)).rejects.toMatchObject({ code: '42601' });
    const wrongType = db.selectFrom('typed').select('id').where('id', '=', 'not a number').execute();
    await expect(wrongType).rejects.toMatchObject({ code: '22P02' });
    expect(await db.selectFrom('typed').select('id').where('id', '=', 20).execute()).toEqual([{ id: 20 }]);
  });

  it('commits a transaction as a whole, or rolls all of it back', async () => {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('typed').values({ id: 30 }).execute();
      await trx.insertInto('typed').values({ id: 31 }).execute();
    });
    const failing = db.transaction().execute(async (trx) => {
      await trx.insertInto('typed').values({ id: 32 }).execute();
      await trx.insertInto('typed').values({ id: 30 }).execute();
    });
    await expect(failing).rejects.toMatchObject({ code: '23505' });
    const ids = await db.selectFrom('typed').select('id').where('id', '>=', 30).orderBy('id').execute();
    expect(ids).toEqual([{ id: 30 }, { id: 31 }]);
    const serializable = await db
      .transaction()
      .setIsolationLevel('serializable')
      .execute(async (trx) => (await sql<{ level: string }>`show transaction_isolation`.execute(trx)).rows);
    expect(serializable).toEqual([{ transaction_isolation: 'serializable' }]);
    expect(pglite.isInTransaction()).toBe(false);
  });

  it('closes the oldest statements past its bound and still runs them again', async () => {
    const distinct = 300;
    for (let n = 0; n < distinct; n++) {
      const { rows } = await sql<{ n: number }>`select ${sql.lit(n)}::int as n, ${n}::int as m`.execute(db);
      expect(rows).toEqual([{ n, m: n }]);
    }
    const prepared = await sql<{
      count: number;
    }>`select count(*)::int as count from pg_prepared_statements`.execute(db);
    expect(prepared.rows[0]?.count).toBeLessThanOrEqual(256);
    expect(prepared.rows[0]?.count).toBeGreaterThan(200);
    const { rows } = await sql<{ n: number }>`select ${sql.lit(0)}::int as n, ${0}::int as m`.execute(db);
    expect(rows).toEqual([{ n: 0, m: 0 }]);
  });

  it('plans a statement once and keeps the plan, with sequential scans priced out', async () => {
    await sql`create table planned (id int primary key)`.execute(db);
    const read = (id: number) => db.selectFrom('planned').selectAll().where('id', '=', id).execute();
    for (let id = 0; id < 4; id++) await read(id);
    const { rows } = await sql<{ generic: number; custom: number }>`
      select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
      where starts_with(statement, 'select * from "planned"')`.execute(db);
    expect(rows).toEqual([{ generic: 4, custom: 0 }]);
    const setting = await pglite.query<{ enable_seqscan: string }>('show enable_seqscan');
    expect(setting.rows).toEqual([{ enable_seqscan: 'off' }]);
  });

  it('prepares a statement again when its table changed shape under it', async () => {
    await sql`create table reshaped (id int)`.execute(db);
    await sql`insert into reshaped values (1)`.execute(db);
    const read = () => db.selectFrom('reshaped').selectAll().execute();
    expect(await read()).toEqual([{ id: 1 }]);
    await sql`alter table reshaped add column note text default 'added'`.execute(db);
    expect(await read()).toEqual([{ id: 1, note: 'added' }]);
  });
});
