import { type Kysely, sql } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/** One self-hosted copy of each account's avatar; erased with the account. */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('avatars')
    .addColumn('account_id', 'uuid', (col) => col.primaryKey().references('accounts.id').onDelete('cascade'))
    .addColumn('source_url', 'text', (col) => col.notNull())
    .addColumn('content_type', 'text', (col) => col.notNull())
    .addColumn('etag', 'text', (col) => col.notNull())
    .addColumn('bytes', 'bytea', (col) => col.notNull())
    .addColumn('updated_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('avatars').execute();
}
