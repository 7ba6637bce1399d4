import { type Kysely, sql } from 'kysely';

// Frozen in time: change the schema with a new migration, never by editing this one.

/**
 * oidc_artifacts.payload and kv_entries.value become `json`: `jsonb` refuses the escape \u0000
 * (PostgreSQL's text cannot hold NUL), so an authorization request whose nonce or state carried
 * %00 failed its Interaction's save with a server error. `json` keeps the text as written, any
 * escape included; nothing queries inside these values, which are read back whole.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table oidc_artifacts alter column payload type json using payload::json`.execute(db);
  await sql`alter table kv_entries alter column value type json using value::json`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: a migration is frozen in time, so it must not see today's Database type
export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table oidc_artifacts alter column payload type jsonb using payload::jsonb`.execute(db);
  await sql`alter table kv_entries alter column value type jsonb using value::jsonb`.execute(db);
}
