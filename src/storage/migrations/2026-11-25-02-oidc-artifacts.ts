import type { Kysely } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('oidc_artifacts')
    .addColumn('model', 'text', (col) => col.notNull())
    .addColumn('id', 'text', (col) => col.notNull())
    .addColumn('payload', 'jsonb', (col) => col.notNull())
    .addColumn('grant_id', 'text')
    .addColumn('uid', 'text')
    .addColumn('user_code', 'text')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('consumed_at', 'timestamptz')
    .addPrimaryKeyConstraint('oidc_artifacts_pkey', ['model', 'id'])
    .execute();

  // Partial indexes: most rows have no grant, uid or user code.
  await db.schema
    .createIndex('oidc_artifacts_grant_id_idx')
    .on('oidc_artifacts')
    .column('grant_id')
    .where('grant_id', 'is not', null)
    .execute();
  await db.schema
    .createIndex('oidc_artifacts_uid_idx')
    .on('oidc_artifacts')
    .column('uid')
    .where('uid', 'is not', null)
    .execute();
  await db.schema
    .createIndex('oidc_artifacts_user_code_idx')
    .on('oidc_artifacts')
    .column('user_code')
    .where('user_code', 'is not', null)
    .execute();
  await db.schema
    .createIndex('oidc_artifacts_expires_at_idx')
    .on('oidc_artifacts')
    .column('expires_at')
    .where('expires_at', 'is not', null)
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('oidc_artifacts').execute();
}
