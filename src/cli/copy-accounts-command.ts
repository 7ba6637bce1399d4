import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import { causes } from '../observability/causes.ts';
import { ACCOUNT_TABLES, copyTables } from '../storage/copy-tables.ts';
import { describeUrl } from '../storage/describe-url.ts';
import { migrateToLatest } from '../storage/migrate.ts';
import { checkPostgresConnection } from '../storage/open-stores.ts';
import { createPostgresDatabase } from '../storage/postgres.ts';
import { embeddedAccountsFile, openAccountsDatabase } from '../storage/sqlite/accounts-database.ts';
import { type CommandOutput, runWithConfig } from './with-config.ts';

export interface CopyAccountsOptions extends CommandOutput {
  /** The embedded setup's data directory, whose accounts.sqlite is copied (and left as it is). */
  dataDir: string;
  /** The PostgreSQL database to copy into (DATABASE_URL): migrated here, and holding no account yet. */
  databaseUrl: string | undefined;
}

/**
 * Moving from the embedded store to PostgreSQL: copies the accounts, with their linked identities,
 * avatars, phone numbers, remembered consents, deletion records and undelivered account events,
 * from `<dataDir>/accounts.sqlite` into an empty PostgreSQL database, in one transaction. Without
 * it people would log in again to new, empty accounts: the same `sub`, but an account waiting to be
 * recovered by its phone number would be lost. Sessions and tokens are not copied (people log in
 * again), nor the index of them. Run it with the server stopped (the file refuses a second
 * process). 0: copied; 1: refused or failed, nothing written.
 */
export async function copyAccountsToPostgres(options: CopyAccountsOptions): Promise<number> {
  const { databaseUrl, stderr } = options;
  if (!databaseUrl) {
    stderr(
      'set DATABASE_URL (or storage.databaseUrl) to the PostgreSQL database to copy the accounts into\n',
    );
    return 1;
  }
  const file = embeddedAccountsFile(options.dataDir);
  // Opening would create an empty file: say what is missing instead.
  if (!existsSync(file)) {
    stderr(`${file} does not exist: nothing to copy (is dataDir the embedded server's?)\n`);
    return 1;
  }
  const from = await openAccountsDatabase(options.dataDir).catch((error: unknown) => {
    stderr(`${error instanceof Error ? error.message : String(error)}\n`);
    return undefined;
  });
  if (!from) return 1;
  const to = createPostgresDatabase(databaseUrl, { maxConnections: 1 });
  try {
    // An unreachable target is said to be one, not "database migrations failed" (an operator's review).
    await checkPostgresConnection(to, databaseUrl);
    await migrateToLatest(to);
    const rows = await to.transaction().execute(async (trx) => {
      // No server or second copy writes accounts meanwhile: the copy starts from empty and ends whole.
      await sql`lock table accounts in exclusive mode`.execute(trx);
      if (await trx.selectFrom('accounts').select('id').limit(1).executeTakeFirst()) return undefined;
      return copyTables(from, trx, ACCOUNT_TABLES);
    });
    if (!rows) {
      stderr(
        `${describeUrl(databaseUrl)} already holds accounts: the copy goes into an empty database only\n`,
      );
      return 1;
    }
    options.stdout(`copied ${file} to ${describeUrl(databaseUrl)}: ${describeCounts(rows)}\n`);
    return 0;
  } catch (error) {
    // PostgreSQL's and pg's messages name the server, the role or the row, never the password.
    stderr(`the copy to ${describeUrl(databaseUrl)} failed and wrote nothing: ${causes(error)}\n`);
    return 1;
  } finally {
    await Promise.allSettled([from.destroy(), to.destroy()]);
  }
}

function describeCounts(rows: Record<string, number>): string {
  return Object.entries(rows)
    .map(([table, count]) => `${count} ${table}`)
    .join(', ');
}

/**
 * The command as copy-accounts-to-postgres.ts (its entry, which checks the Node version first) runs
 * it, with the configuration the server reads (dataDir, DATABASE_URL). It takes no arguments: any
 * (--help included) gets the usage, and nothing is copied.
 */
export async function main(argv: readonly string[]): Promise<void> {
  if (argv.length > 0) {
    process.stderr.write(
      'usage: copy-accounts-to-postgres (no arguments): copies the embedded accounts under dataDir into the\n' +
        'empty PostgreSQL database of DATABASE_URL (or storage.databaseUrl), with CONFIG_FILE as the server reads it\n',
    );
    process.exitCode = argv[0] === '--help' || argv[0] === '-h' ? 0 : 64;
    return;
  }
  await runWithConfig('copy-accounts-to-postgres', (config, output) =>
    copyAccountsToPostgres({ dataDir: config.dataDir, databaseUrl: config.storage.databaseUrl, ...output }),
  );
}
