import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { embeddedArtifactsFile, openArtifactsDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteKeyValueStore } from '../../src/storage/sqlite/key-value.ts';
import { createSqliteOidcAdapter } from '../../src/storage/sqlite/oidc-adapter.ts';
import { openSqliteBackend } from './backends.ts';
import { createFakeClock } from './fake-clock.ts';

// What the conformance suites (oidc-adapter.test.ts, key-value.test.ts) do not cover: the embedded
// SQLite file's sweeps, schema version and durability settings.
describe('SQLite artifacts file (embedded)', () => {
  let backend: Awaited<ReturnType<typeof openSqliteBackend>>;
  beforeAll(async () => {
    backend = await openSqliteBackend();
  });
  afterAll(async () => {
    await backend?.close();
  });

  const ids = (table: string) =>
    (backend.database.prepare(`select * from ${table}`).all() as { id?: string; key?: string }[]).map(
      (row) => row.id ?? row.key,
    );

  it('sweeps expired artifacts in batches, keeping live and never-expiring ones', async () => {
    const clock = createFakeClock();
    const adapter = createSqliteOidcAdapter(backend.database, backend.writes, {
      now: clock.now,
      sweepIntervalMs: 0,
    });
    const tokens = adapter.factory('AccessToken');
    // More than one batch of the sweeper's (500), so that the loop over batches runs.
    for (let i = 0; i < 1_234; i++) await tokens.upsert(`short-${i}`, { jti: `short-${i}` }, 10);
    const [long, forever] = [randomUUID(), randomUUID()];
    await tokens.upsert(long, { jti: long }, 1000);
    await adapter.factory('RegistrationAccessToken').upsert(forever, { jti: forever }, undefined);
    clock.advance(11);
    expect(await adapter.sweep()).toBe(1_234);
    expect(ids('oidc_artifacts').sort()).toEqual([long, forever].sort());
    expect(await adapter.sweep()).toBe(0);
  });

  it('sweeps expired key-value entries and keeps live ones', async () => {
    const clock = createFakeClock();
    const kv = createSqliteKeyValueStore(backend.database, backend.writes, {
      now: clock.now,
      sweepIntervalMs: 0,
    });
    await kv.put('sweep:short', 1, 10);
    await kv.put('sweep:long', 2, 1000);
    clock.advance(11);
    expect(await kv.sweep()).toBe(1);
    expect(ids('kv_entries')).toEqual(['sweep:long']);
  });

  it('keeps what was written across a reopen, in a write-ahead log synced at checkpoints', async () => {
    const own = await openSqliteBackend();
    onTestFinished(() => own.close());
    await createSqliteKeyValueStore(own.database, own.writes, { sweepIntervalMs: 0 }).put(
      'kept',
      { a: 1 },
      60,
    );
    const pragmas = {
      journal: own.database.prepare('pragma journal_mode').get(),
      synchronous: own.database.prepare('pragma synchronous').get(),
      checkpoint: own.database.prepare('pragma wal_autocheckpoint').get(),
    };
    expect(pragmas).toEqual({
      journal: { journal_mode: 'wal' },
      synchronous: { synchronous: 1 },
      checkpoint: { wal_autocheckpoint: 10_000 },
    });
    await own.reopen();
    expect(
      await createSqliteKeyValueStore(own.database, own.writes, { sweepIntervalMs: 0 }).get('kept'),
    ).toEqual({
      a: 1,
    });
    expect(statSync(embeddedArtifactsFile(own.dataDir)).isFile()).toBe(true);
  });

  it('keeps the file to itself: a second opening is refused, naming the rule', async () => {
    await expect(openArtifactsDatabase(backend.dataDir)).rejects.toThrow(
      `${embeddedArtifactsFile(backend.dataDir)} is open in another process: the embedded store admits one process per data directory`,
    );
    // The holder is unaffected.
    expect(backend.database.prepare('select 1 as one').get()).toEqual({ one: 1 });
  });

  it('refuses a file written by a newer schema, naming it', async () => {
    const own = await openSqliteBackend();
    onTestFinished(() => own.close());
    own.database.exec('pragma user_version = 99');
    own.database.close();
    await expect(openArtifactsDatabase(own.dataDir)).rejects.toThrow(
      `${embeddedArtifactsFile(own.dataDir)} has schema version 99, newer than this server's 2`,
    );
    // The refusal closed its handle: the file opens again.
    own.database = new DatabaseSync(embeddedArtifactsFile(own.dataDir));
  });
});
