import { sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MigrationError, migrateToLatest } from '../../src/storage/migrate.ts';
import { migrationProvider, migrations } from '../../src/storage/migrations/index.ts';
import { createPostgresDatabase } from '../../src/storage/postgres.ts';
import { createTestDatabase } from '../helpers/postgres.ts';
import { serviceAvailable } from '../helpers/services.ts';

const postgres = await serviceAvailable('postgres');

describe('migrations', () => {
  it('are bundled in the order they must run, with ISO-dated names', () => {
    const names = Object.keys(migrations);
    expect(names).toEqual([...names].sort());
    for (const name of names) expect(name).toMatch(/^\d{4}-\d{2}-\d{2}-\d{2}-[a-z0-9-]+$/);
  });
});

describe.skipIf(!postgres)('migrateToLatest on PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('names the migration that failed, and leaves nothing half-applied', async () => {
    const db = createPostgresDatabase(database.url);
    try {
      // Something already in the way of the second migration.
      await sql`create table oidc_artifacts (x int)`.execute(db);
      const error = await migrateToLatest(db).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect(error).toMatchObject({ migrationName: '2026-11-25-02-oidc-artifacts' });
      expect((error as Error).message).toContain('2026-11-25-02-oidc-artifacts');
      const tables = await sql<{
        n: number;
      }>`select count(*)::int as n from pg_tables where tablename = 'accounts'`.execute(db);
      expect(tables.rows[0]?.n).toBe(0);
    } finally {
      await db.destroy();
    }
  });

  it('gives accounts of before their updated_at as profile_updated_at (the updated_at claim)', async () => {
    const fresh = await createTestDatabase();
    const db = createPostgresDatabase(fresh.url);
    try {
      const before = new Migrator({ db, provider: migrationProvider });
      expect((await before.migrateTo('2026-12-03-01-consents')).error).toBeUndefined();
      const changed = new Date('2026-12-01T08:00:00.000Z');
      await sql`insert into accounts (subject, updated_at) values ('u-before', ${changed})`.execute(db);
      expect((await migrateToLatest(db))[0]).toBe('2026-12-06-01-account-profile-updated-at');
      const account = await db.selectFrom('accounts').select('profile_updated_at').executeTakeFirstOrThrow();
      expect(account.profile_updated_at).toEqual(changed);
    } finally {
      await db.destroy();
      await fresh.drop();
    }
  });

  it('keeps the artifacts and entries saved as jsonb when their columns become json', async () => {
    const fresh = await createTestDatabase();
    const db = createPostgresDatabase(fresh.url);
    try {
      const before = new Migrator({ db, provider: migrationProvider });
      expect((await before.migrateTo('2026-12-06-01-account-profile-updated-at')).error).toBeUndefined();
      const payload = { kind: 'Session', jti: 's-1', nested: { list: [1, 'two'] }, nickname: '微信' };
      await sql`insert into oidc_artifacts (model, id, payload) values ('Session', 's-1', cast(${JSON.stringify(payload)} as jsonb))`.execute(
        db,
      );
      await sql`insert into kv_entries (key, value, expires_at) values ('k', cast('"v"' as jsonb), now() + interval '1 hour')`.execute(
        db,
      );
      expect((await migrateToLatest(db))[0]).toBe('2026-12-06-02-json-payloads');
      const artifact = await db.selectFrom('oidc_artifacts').select('payload').executeTakeFirstOrThrow();
      expect(artifact.payload).toEqual(payload);
      expect((await db.selectFrom('kv_entries').select('value').executeTakeFirstOrThrow()).value).toBe('v');
    } finally {
      await db.destroy();
      await fresh.drop();
    }
  });

  it('applies every migration once, however many instances start together', async () => {
    const fresh = await createTestDatabase();
    const instances = [createPostgresDatabase(fresh.url), createPostgresDatabase(fresh.url)];
    try {
      const applied = await Promise.all(instances.map((db) => migrateToLatest(db)));
      expect(applied.flat().sort()).toEqual(Object.keys(migrations));
    } finally {
      await Promise.all(instances.map((db) => db.destroy()));
      await fresh.drop();
    }
  });
  it("runs on a later release's schema without migrating it (a rolling upgrade, a rollback), and refuses another line of releases", async () => {
    const fresh = await createTestDatabase();
    const db = createPostgresDatabase(fresh.url);
    try {
      await migrateToLatest(db);
      // A later release migrated the database: a migration this one does not know.
      await sql`insert into kysely_migration (name, timestamp) values ('2099-01-01-01-later-release', ${new Date().toISOString()})`.execute(
        db,
      );
      const heard: string[][] = [];
      expect(await migrateToLatest(db, (names) => heard.push(names))).toEqual([]);
      expect(heard).toEqual([['2099-01-01-01-later-release']]);
      // A database that also lacks one of this release's migrations is from another line: refused.
      const last = Object.keys(migrations).at(-1) as string;
      await sql`delete from kysely_migration where name = ${last}`.execute(db);
      const error = await migrateToLatest(db).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as Error).message).toContain('another line of releases');
      expect((error as Error).message).toContain(last);
    } finally {
      await db.destroy();
      await fresh.drop();
    }
  });
});
