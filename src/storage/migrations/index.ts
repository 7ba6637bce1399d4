import type { Migration, MigrationProvider } from 'kysely/migration';
import * as accounts from './2026-11-25-01-accounts.ts';
import * as oidcArtifacts from './2026-11-25-02-oidc-artifacts.ts';
import * as kvEntries from './2026-11-25-03-kv-entries.ts';
import * as accountPhone from './2026-11-27-01-account-phone.ts';
import * as avatars from './2026-11-28-01-avatars.ts';
import * as accountLifecycle from './2026-11-28-02-account-lifecycle.ts';
import * as accountEventDeliveries from './2026-11-29-01-account-event-deliveries.ts';
import * as consents from './2026-12-03-01-consents.ts';
import * as accountProfileUpdatedAt from './2026-12-06-01-account-profile-updated-at.ts';
import * as jsonPayloads from './2026-12-06-02-json-payloads.ts';
import * as lookupIndexes from './2026-12-06-03-lookup-indexes.ts';
import * as accountCleanups from './2026-12-07-01-account-cleanups.ts';
import * as artifactConsumer from './2026-12-07-02-artifact-consumer.ts';

/**
 * Every migration, bundled statically so a build (or a single-file bundle) carries them:
 * nothing reads a folder at runtime. Names sort in the order they must run; add new ones
 * at the end with a later ISO date.
 *
 * A migration only adds (a table, a nullable column or one with a default, an index): the release
 * before must run on the schema it leaves, during a rolling upgrade and after a rollback (migrate.ts,
 * README "Upgrading"). What a later release no longer needs is removed a release after it stops
 * using it.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '2026-11-25-01-accounts': accounts,
  '2026-11-25-02-oidc-artifacts': oidcArtifacts,
  '2026-11-25-03-kv-entries': kvEntries,
  '2026-11-27-01-account-phone': accountPhone,
  '2026-11-28-01-avatars': avatars,
  '2026-11-28-02-account-lifecycle': accountLifecycle,
  '2026-11-29-01-account-event-deliveries': accountEventDeliveries,
  '2026-12-03-01-consents': consents,
  '2026-12-06-01-account-profile-updated-at': accountProfileUpdatedAt,
  '2026-12-06-02-json-payloads': jsonPayloads,
  '2026-12-06-03-lookup-indexes': lookupIndexes,
  '2026-12-07-01-account-cleanups': accountCleanups,
  '2026-12-07-02-artifact-consumer': artifactConsumer,
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};
