import type { Kysely } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/**
 * The mark of the consume that spent an artifact (a code, a refresh token), so that the token
 * request which spent it can give it back if it then fails (src/oidc/single-use.ts), and no other.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('oidc_artifacts').addColumn('consumed_by', 'text').execute();
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('oidc_artifacts').dropColumn('consumed_by').execute();
}
