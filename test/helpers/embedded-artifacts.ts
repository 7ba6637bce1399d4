import type { Stores } from '../../src/storage/ports.ts';

/**
 * Every row of one table of an embedded bridge's SQLite artifacts file, read through the server's own
 * handle (the file is locked to it): what a person inspecting the data directory would see.
 */
export function embeddedArtifactRows(
  stores: Stores,
  table: 'oidc_artifacts' | 'kv_entries',
): Record<string, unknown>[] {
  if (!stores.sqlite) throw new Error('not an embedded bridge: its artifacts are not in SQLite');
  return stores.sqlite.prepare(`select * from ${table}`).all() as Record<string, unknown>[];
}
