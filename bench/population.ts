import { type Kysely, sql } from 'kysely';
import { isSqlite } from '../src/storage/dialect.ts';
import { migrateToLatest } from '../src/storage/migrate.ts';
import type { Database } from '../src/storage/schema.ts';

/**
 * People who used the bridge before, so that a login's statements run against tables of a real
 * deployment's size instead of the sandbox's two hundred people: a statement that reads a whole
 * table (as the returning person's did, src/accounts/repository.ts) then shows in the figures.
 * Each has an account and a website identity; every other one (the even-numbered) a mini-program
 * identity, the others a remembered consent. None of them logs in during the run. Returns how many accounts the database
 * holds then.
 */
export async function seedPopulation(
  db: Kysely<Database>,
  people: number,
  consentClient: string,
): Promise<number> {
  // The embedded accounts file is brought up to date as it opens.
  if (!isSqlite(db)) await migrateToLatest(db);
  if (people > 0) await insertPeople(db, people, consentClient);
  const { count } = await db
    .selectFrom('accounts')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(count);
}

/**
 * In SQL both PostgreSQL and SQLite (the embedded accounts file) take: a recursive count rather than
 * generate_series, the parity of the last digit by substr, times and scopes as bound values.
 */
async function insertPeople(db: Kysely<Database>, people: number, consentClient: string): Promise<void> {
  const now = new Date();
  const evenLastDigit = sql`cast(substr(subject, length(subject)) as integer) % 2 = 0`;
  await sql`
    with recursive n(v) as (select 1 union all select v + 1 from n where v < ${people})
    insert into accounts (subject, nickname, created_at, updated_at, profile_updated_at, last_login_at)
    select 'bench-population-' || v, 'person ' || v, ${now}, ${now}, ${now}, ${now} from n
  `.execute(db);
  await sql`
    insert into identities (appid, openid, account_id, kind, unionid)
    select 'wx-bench-population-web', 'openid-' || subject, id, 'website', subject from accounts
    where subject like 'bench-population-%'
  `.execute(db);
  await sql`
    insert into identities (appid, openid, account_id, kind, unionid)
    select 'wx-bench-population-mp', 'openid-' || subject, id, 'mini_program', subject from accounts
    where subject like 'bench-population-%' and ${evenLastDigit}
  `.execute(db);
  await sql`
    insert into consents (account_id, client_id, scopes)
    select id, ${consentClient}, ${['openid', 'profile']} from accounts
    where subject like 'bench-population-%' and not ${evenLastDigit}
  `.execute(db);
  await sql`analyze`.execute(db);
}
