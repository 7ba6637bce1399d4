import type { Kysely } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/**
 * What a deletion still has to remove outside this database (grants, tokens and sessions in the
 * shared store, the identities mini-program grants remembered), by the deleted account's subject,
 * written in the deletion's transaction and removed once a later pass finds nothing left
 * (src/accounts/deletion-cleanup.ts).
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('account_cleanups')
    .addColumn('subject', 'text', (col) => col.primaryKey())
    .addColumn('due_at', 'timestamptz', (col) => col.notNull())
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .execute();
  await db.schema
    .createIndex('account_cleanups_due_at_idx')
    .on('account_cleanups')
    .column('due_at')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('account_cleanups').execute();
}
