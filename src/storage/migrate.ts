import { type Kysely, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { migrationProvider, migrations } from './migrations/index.ts';
import type { Database } from './schema.ts';

/** Thrown when a migration fails; names it so an operator knows where to look. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  readonly migrationName: string | undefined;

  constructor(migrationName: string | undefined, options: { cause: unknown }) {
    const reason = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super(
      migrationName === undefined
        ? `database migrations failed: ${reason}`
        : `database migration ${migrationName} failed: ${reason}`,
      options,
    );
    this.migrationName = migrationName;
  }
}

/**
 * Brings the schema up to date and returns the names of the migrations it ran.
 * Safe to call from several instances at once: kysely holds a migration lock
 * (an advisory lock on PostgreSQL) while it runs.
 *
 * A database a later release has migrated (migrations this release does not know, after all of
 * its own) is left as it is, and `onNewerSchema` hears their names: the release before runs on the
 * next one's schema, since migrations only add to it (README, "Upgrading"), so that during a
 * rolling upgrade an instance of the old release can still restart, and a release can be rolled
 * back. kysely would refuse such a database as "corrupted", and the old instances could not start.
 * A database that also lacks migrations of this release is from another line of releases: refused.
 */
export async function migrateToLatest(
  db: Kysely<Database>,
  onNewerSchema?: (names: string[]) => void,
): Promise<string[]> {
  const newer = await newerMigrations(db);
  if (newer.length > 0) {
    onNewerSchema?.(newer);
    return [];
  }
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((result) => result.status === 'Error');
    throw new MigrationError(failed?.migrationName, { cause: error });
  }
  return results.filter((result) => result.status === 'Success').map((result) => result.migrationName);
}

/**
 * The migrations recorded in the database that this release does not know, when it has run all of
 * its own; empty when there are none (or no migrations table yet). Throws a MigrationError for a
 * database that also lacks some of this release's.
 */
async function newerMigrations(db: Kysely<Database>): Promise<string[]> {
  const executed = await sql<{ name: string }>`select name from kysely_migration`
    .execute(db)
    .then((result) => result.rows.map((row) => row.name))
    // No table yet: a new database, migrated below.
    .catch(() => [] as string[]);
  const known = new Set(Object.keys(migrations));
  const unknown = executed.filter((name) => !known.has(name)).sort();
  if (unknown.length === 0) return [];
  const done = new Set(executed);
  const missing = [...known].filter((name) => !done.has(name));
  if (missing.length > 0) {
    throw new MigrationError(undefined, {
      cause: new Error(
        `the database has migrations this release does not know (${unknown.join(', ')}) and lacks some of its own (${missing.join(', ')}): it belongs to another line of releases`,
      ),
    });
  }
  return unknown;
}
