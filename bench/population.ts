import { type Kysely, sql } from 'kysely';
import { isSqlite } from '../src/storage/dialect.ts';
import { migrateToLatest } from '../src/storage/migrate.ts';
import type { Database } from '../src/storage/schema.ts';

/**
 * People who used the bridge before, so that a login's statements run against tables of a real
 * deployment's size instead of the sandbox's two hundred people: a statement that reads a whole
 * table (as the returning person's did, src/accounts/repository.ts) then shows in the figures.
 * Each has an account, a website identity, and every other one a mini-program identity and a
 * remembered consent. None of them logs in during the run. Returns how many accounts the database
 * holds then.
 */
export async function seedPopulation(
  db: Kysely<Database>,
  people: number,
  consentClient: string,
): Promise<number> {
  const sqlite = isSqlite(db);
  // The embedded accounts file is brought up to date as it opens.
  if (!sqlite) await migrateToLatest(db);
  if (people > 0) await (sqlite ? insertPeopleSqlite : insertPeople)(db, people, consentClient);
  const { count } = await db
    .selectFrom('accounts')
    .select((eb) => eb.fn.countAll<number>().as('count'))
    .executeTakeFirstOrThrow();
  return Number(count);
}

/** insertPeople in SQLite's terms (no generate_series, no arrays; times in milliseconds). */
async function insertPeopleSqlite(
  db: Kysely<Database>,
  people: number,
  consentClient: string,
): Promise<void> {
  const now = Date.now();
  await sql`
    with recursive n(v) as (select 1 union all select v + 1 from n where v < ${people})
    insert into accounts (subject, nickname, created_at, updated_at, last_login_at)
    select 'bench-population-' || v, 'person ' || v, ${now}, ${now}, ${now} from n
  `.execute(db);
  await sql`
    insert into identities (appid, openid, account_id, kind, unionid)
    select 'wx-bench-population-web', 'openid-' || subject, id, 'website', subject from accounts
    where subject like 'bench-population-%'
  `.execute(db);
  await sql`
    insert into identities (appid, openid, account_id, kind, unionid)
    select 'wx-bench-population-mp', 'openid-' || subject, id, 'mini_program', subject from accounts
    where subject like 'bench-population-%' and substr(subject, -1) in ('0', '2', '4', '6', '8')
  `.execute(db);
  await sql`
    insert into consents (account_id, client_id, scopes)
    select id, ${consentClient}, '["openid","profile"]' from accounts
    where subject like 'bench-population-%' and substr(subject, -1) in ('1', '3', '5', '7', '9')
  `.execute(db);
  await sql`analyze`.execute(db);
}

async function insertPeople(db: Kysely<Database>, people: number, consentClient: string): Promise<void> {
  await sql`
    insert into accounts (subject, nickname, created_at, updated_at, last_login_at)
    select 'bench-population-' || n, 'person ' || n, now(), now(), now()
    from generate_series(1, ${people}::int) as n
  `.execute(db);
  await sql`
    insert into identities (appid, openid, account_id, kind, unionid)
    select 'wx-bench-population-web', 'openid-' || subject, id, 'website', subject from accounts
    where subject like 'bench-population-%'
  `.execute(db);
  await sql`
    insert into identities (appid, openid, account_id, kind, unionid)
    select 'wx-bench-population-mp', 'openid-' || subject, id, 'mini_program', subject from accounts
    where subject like 'bench-population-%' and right(subject, 1) in ('0', '2', '4', '6', '8')
  `.execute(db);
  await sql`
    insert into consents (account_id, client_id, scopes)
    select id, ${consentClient}, array['openid', 'profile'] from accounts
    where subject like 'bench-population-%' and right(subject, 1) in ('1', '3', '5', '7', '9')
  `.execute(db);
  await sql`analyze`.execute(db);
}
