import type { Kysely } from 'kysely';
import { Migrator } from 'kysely/migration';
import { migrationProvider } from './migrations/index.ts';
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
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((result) => result.status === 'Error');
    throw new MigrationError(failed?.migrationName, { cause: error });
  }
  return results.filter((result) => result.status === 'Success').map((result) => result.migrationName);
}
