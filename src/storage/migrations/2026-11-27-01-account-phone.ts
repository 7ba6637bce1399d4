import { type Kysely, sql } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/** A verified phone number per account (mini program getPhoneNumber), released under the phone scope. */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('accounts')
    .addColumn('phone_number', 'text')
    .addColumn('phone_number_verified', 'boolean', (col) => col.notNull().defaultTo(sql`false`))
    .addColumn('phone_verified_at', 'timestamptz')
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('accounts')
    .dropColumn('phone_verified_at')
    .dropColumn('phone_number_verified')
    .dropColumn('phone_number')
    .execute();
}
