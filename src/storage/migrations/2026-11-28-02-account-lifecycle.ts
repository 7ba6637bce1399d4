import { type Kysely, sql } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/**
 * account_artifacts: which oidc-provider grants and sessions belong to which account: the adapters (Redis or SQL) key
 * them by id only, and the account page and deletion must find every one of a person's.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('account_artifacts')
    .addColumn('model', 'text', (col) => col.notNull().check(sql`model in ('Grant', 'Session')`))
    .addColumn('id', 'text', (col) => col.notNull())
    .addColumn('subject', 'text', (col) => col.notNull())
    .addColumn('client_id', 'text')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('account_artifacts_pkey', ['model', 'id'])
    .execute();
  await db.schema
    .createIndex('account_artifacts_subject_idx')
    .on('account_artifacts')
    .columns(['subject', 'model'])
    .execute();
  // One row per deleted account, with nothing that identifies the person (no subject, ids or names).
  await db.schema
    .createTable('account_deletions')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('deleted_at', 'timestamptz', (col) => col.notNull())
    .addColumn('requested_by', 'text', (col) =>
      col.notNull().check(sql`requested_by in ('person', 'operator')`),
    )
    .addColumn('identities', 'integer', (col) => col.notNull())
    .addColumn('grants_revoked', 'integer', (col) => col.notNull())
    .addColumn('sessions_ended', 'integer', (col) => col.notNull())
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('account_deletions').execute();
  await db.schema.dropTable('account_artifacts').execute();
}
