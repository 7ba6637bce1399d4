import { type Kysely, sql } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/**
 * account_event_deliveries: the outbox of account events for relying parties, one row per
 * recipient, kept until delivered or given up. The token is the signed Security Event Token, so a
 * retry sends the same jti; last_error is a short reason (a status or an error class), never it.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('account_event_deliveries')
    .addColumn('id', 'uuid', (col) => col.primaryKey().defaultTo(sql`gen_random_uuid()`))
    .addColumn('client_id', 'text', (col) => col.notNull())
    .addColumn('event_type', 'text', (col) => col.notNull())
    .addColumn('events_uri', 'text', (col) => col.notNull())
    .addColumn('token', 'text', (col) => col.notNull())
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'timestamptz', (col) => col.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .createIndex('account_event_deliveries_due_idx')
    .on('account_event_deliveries')
    .column('next_attempt_at')
    .execute();
  // The artifact index's sweep deletes by expiry.
  await db.schema
    .createIndex('account_artifacts_expires_at_idx')
    .on('account_artifacts')
    .column('expires_at')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('account_artifacts_expires_at_idx').execute();
  await db.schema.dropTable('account_event_deliveries').execute();
}
