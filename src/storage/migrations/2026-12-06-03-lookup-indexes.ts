import type { Kysely } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/**
 * Two lookups that read every account or identity: the phone recovery's search for the account
 * waiting with a number (at each first phone binding, src/accounts/repository.ts), and the operator's
 * `delete-account --openid`.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.createIndex('accounts_phone_number_idx').on('accounts').column('phone_number').execute();
  await db.schema.createIndex('identities_openid_idx').on('identities').column('openid').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('identities_openid_idx').execute();
  await db.schema.dropIndex('accounts_phone_number_idx').execute();
}
