import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { indexWriter } from '../../src/accounts/artifact-batch.ts';
import { indexedArtifacts } from '../../src/accounts/artifact-index.ts';
import { findEverything, type RevocationDeps, revokeFound } from '../../src/accounts/revocation.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { serviceAvailable } from '../helpers/services.ts';
import { openPostgresBackend, openSqliteAccountsBackend, type SqlBackend } from '../storage/backends.ts';

const backends: Array<[string, () => Promise<SqlBackend>, boolean]> = [
  ['SQLite', openSqliteAccountsBackend, true],
  ['PostgreSQL', openPostgresBackend, await serviceAvailable('postgres')],
];

for (const [name, open, available] of backends) {
  describe.skipIf(!available)(`account artifact index writes in batches (${name})`, () => {
    let backend: SqlBackend;
    beforeAll(async () => {
      backend = await open();
    });
    afterAll(async () => backend?.close());

    const logger = createLogger({ level: 'silent' });
    const row = (subject: string, model: 'Grant' | 'Session', id: string, expiresAt: Date) => ({
      model,
      id,
      subject,
      client_id: 'rp',
      expires_at: expiresAt,
    });
    const stored = (subject: string) =>
      backend.db
        .selectFrom('account_artifacts')
        .select(['model', 'id', 'expires_at'])
        .where('subject', '=', subject)
        .orderBy('id')
        .execute();

    test('a reader in this process sees rows handed over a moment ago, each row once with its latest expiry', async () => {
      const subject = `union-${randomUUID()}`;
      const writer = indexWriter(backend.db, logger);
      const soon = new Date(Date.now() + 60_000);
      const later = new Date(Date.now() + 120_000);
      writer.add(row(subject, 'Session', 's-1', soon));
      writer.add(row(subject, 'Grant', 'g-1', soon));
      writer.add(row(subject, 'Session', 's-1', later));
      // No wait: indexedArtifacts flushes what this process holds before it reads.
      expect((await indexedArtifacts(backend.db, subject, 'Session')).map((r) => r.id)).toEqual(['s-1']);
      const rows = await stored(subject);
      expect(rows.map((r) => [r.model, r.id])).toEqual([
        ['Grant', 'g-1'],
        ['Session', 's-1'],
      ]);
      expect(rows.find((r) => r.id === 's-1')?.expires_at?.getTime()).toBe(later.getTime());
    });

    test('writes on its own after a few milliseconds, and updates the expiry of a row written before', async () => {
      const subject = `union-${randomUUID()}`;
      const writer = indexWriter(backend.db, logger);
      writer.add(row(subject, 'Grant', 'g-2', new Date(Date.now() + 60_000)));
      await expect.poll(async () => (await stored(subject)).length, { timeout: 5_000 }).toBe(1);
      const extended = new Date(Date.now() + 600_000);
      writer.add(row(subject, 'Grant', 'g-2', extended));
      await writer.flush();
      expect((await stored(subject))[0]?.expires_at?.getTime()).toBe(extended.getTime());
    });

    test('an artifact destroyed before its row was written is never written', async () => {
      const subject = `union-${randomUUID()}`;
      const writer = indexWriter(backend.db, logger);
      writer.add(row(subject, 'Session', 's-3', new Date(Date.now() + 60_000)));
      writer.drop('Session', 's-3');
      await writer.flush();
      expect(await stored(subject)).toEqual([]);
    });

    test('a revocation pass forgets the rows it revoked, and keeps one written meanwhile for a later pass', async () => {
      const subject = `union-${randomUUID()}`;
      const soon = new Date(Date.now() + 60_000);
      const writer = indexWriter(backend.db, logger);
      writer.add(row(subject, 'Grant', 'g-5', soon));
      writer.add(row(subject, 'Session', 's-5', soon));
      // A row naming a session that is gone (a save a logout's tombstone refused): forgotten, not counted.
      writer.add(row(subject, 'Session', 's-gone', soon));
      const destroyed: string[] = [];
      const adapter = (model: string) => ({
        find: async (id: string) => (id === 's-gone' ? undefined : { accountId: subject }),
        revokeByGrantId: async () => {},
        destroy: async (id: string) => {
          destroyed.push(`${model}:${id}`);
          // A login on another instance writes its session's row while the revocation runs.
          if (model === 'Session') {
            writer.add(row(subject, 'Session', 's-6', soon));
            await writer.flush();
          }
        },
      });
      const deps = { db: backend.db, adapter } as unknown as RevocationDeps;
      const revoked = await revokeFound(deps, subject, await findEverything(deps, subject));
      expect(revoked).toMatchObject({ grants: 1, sessions: 1 });
      expect(destroyed.sort()).toEqual(['Grant:g-5', 'Session:s-5', 'Session:s-gone']);
      expect((await stored(subject)).map((r) => r.id)).toEqual(['s-6']);
    });
  });
}
