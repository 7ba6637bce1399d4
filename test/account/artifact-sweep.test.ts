import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { indexedArtifacts, startArtifactSweep } from '../../src/accounts/artifact-index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { openPostgresBackend, openSqliteAccountsBackend, type SqlBackend } from '../storage/backends.ts';

const backends: Array<[string, () => Promise<SqlBackend>, boolean]> = [
  ['SQLite', openSqliteAccountsBackend, true],
  ['PostgreSQL', openPostgresBackend, await serviceAvailable('postgres')],
];

for (const [name, open, available] of backends) {
  describe.skipIf(!available)(`account artifact index sweep (${name})`, () => {
    let backend: SqlBackend;
    beforeAll(async () => {
      backend = await open();
    });
    afterAll(async () => backend?.close());

    test('removes rows of expired grants and sessions, keeps live and never-expiring ones', async () => {
      const subject = `union-${randomUUID()}`;
      const row = (model: 'Grant' | 'Session', id: string, expiresAt: Date | null) => ({
        model,
        id,
        subject,
        client_id: 'rp',
        expires_at: expiresAt,
      });
      await backend.db
        .insertInto('account_artifacts')
        .values([
          row('Grant', 'expired-grant', new Date(Date.now() - 60_000)),
          row('Session', 'expired-session', new Date(Date.now() - 1_000)),
          row('Grant', 'live-grant', new Date(Date.now() + 3_600_000)),
          row('Grant', 'endless-grant', null),
        ])
        .execute();
      const stop = startArtifactSweep(backend.db, createLogger({ level: 'silent' }), { intervalMs: 10 });
      try {
        await expect
          .poll(async () => (await indexedArtifacts(backend.db, subject, 'Session')).map((a) => a.id))
          .toEqual([]);
        const grants = await indexedArtifacts(backend.db, subject, 'Grant');
        expect(grants.map((a) => a.id).sort()).toEqual(['endless-grant', 'live-grant']);
      } finally {
        stop();
      }
    });
  });
}
