import { type Kysely, sql } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/**
 * accounts.profile_updated_at: when what the account's claims show last changed (nickname, avatar,
 * phone, linked WeChat identities), the OIDC `updated_at` claim. `updated_at` moves at every login
 * (it orders the copies of an account and the recovery rule reads it), so the claim said "changed"
 * at each login. Accounts of before take their updated_at, the best time there is for them.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('accounts').addColumn('profile_updated_at', 'timestamptz').execute();
  await sql`update accounts set profile_updated_at = updated_at`.execute(db);
  await db.schema
    .alterTable('accounts')
    .alterColumn('profile_updated_at', (col) => col.setNotNull())
    .alterColumn('profile_updated_at', (col) => col.setDefault(sql`now()`))
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('accounts').dropColumn('profile_updated_at').execute();
}
