import { type Kysely, sql } from 'kysely';
import { isSqlite } from '../storage/dialect.ts';
import type { Database } from '../storage/schema.ts';

/**
 * Remembered consent: the scopes a person allowed a third-party client, kept until they revoke the
 * client on the account page (or delete the account). A grant of oidc-provider lives as long as the
 * browser session it was given in, so without this a person would be asked again at every login
 * from a new browser, as no identity provider people know does. Asking again still happens when
 * the client wants a scope not allowed before, or demands it with prompt=consent.
 *
 * Accounts are named by subject here, as oidc-provider names them (the interaction's accountId).
 */

/** Adds `scopes` to what the person allowed the client (a new consent never narrows an old one). */
export async function rememberConsent(
  db: Kysely<Database>,
  subject: string,
  clientId: string,
  scopes: Iterable<string>,
  now: Date,
): Promise<void> {
  // Scopes are space-free by definition (RFC 6749 section 3.3): sent as one string, every driver agrees.
  const allowed = [...new Set(scopes)].sort();
  if (allowed.length === 0) return;
  if (isSqlite(db)) {
    // The same in SQLite's terms: the scopes are a JSON array there, merged by a union.
    await sql`
      insert into consents (account_id, client_id, scopes, created_at, updated_at)
      select id, ${clientId}, ${JSON.stringify(allowed)}, ${now.getTime()}, ${now.getTime()}
      from accounts where subject = ${subject}
      on conflict (account_id, client_id) do update
        set scopes = (select json_group_array(value) from (
              select value from json_each(consents.scopes)
              union select value from json_each(excluded.scopes)
              order by value)),
            updated_at = excluded.updated_at
    `.execute(db);
    return;
  }
  await sql`
    insert into consents (account_id, client_id, scopes, created_at, updated_at)
    select id, ${clientId}, string_to_array(${allowed.join(' ')}, ' '), ${now}, ${now}
    from accounts where subject = ${subject}
    on conflict (account_id, client_id) do update
      set scopes = array(select distinct unnest(consents.scopes || excluded.scopes) order by 1),
          updated_at = excluded.updated_at
  `.execute(db);
}

/** The scopes the person allowed the client, empty when none were. */
export async function rememberedScopes(
  db: Kysely<Database>,
  subject: string,
  clientId: string,
): Promise<ReadonlySet<string>> {
  const row = await db
    .selectFrom('consents')
    .innerJoin('accounts', 'accounts.id', 'consents.account_id')
    .select('consents.scopes')
    .where('accounts.subject', '=', subject)
    .where('consents.client_id', '=', clientId)
    .executeTakeFirst();
  return new Set(row?.scopes ?? []);
}

/** Every client the person has allowed, with what (the account page lists them). */
export async function listConsents(
  db: Kysely<Database>,
  subject: string,
): Promise<Array<{ clientId: string; scopes: string[] }>> {
  const rows = await db
    .selectFrom('consents')
    .innerJoin('accounts', 'accounts.id', 'consents.account_id')
    .select(['consents.client_id', 'consents.scopes'])
    .where('accounts.subject', '=', subject)
    .orderBy('consents.created_at')
    .execute();
  return rows.map((row) => ({ clientId: row.client_id, scopes: row.scopes }));
}

/** Forgets what the person allowed the client; resolves whether there was anything to forget. */
export async function forgetConsent(
  db: Kysely<Database>,
  subject: string,
  clientId: string,
): Promise<boolean> {
  const result = await db
    .deleteFrom('consents')
    .where('client_id', '=', clientId)
    .where('account_id', 'in', (qb) => qb.selectFrom('accounts').select('id').where('subject', '=', subject))
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}
