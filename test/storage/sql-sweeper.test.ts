import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSqlKeyValueStore } from '../../src/storage/sql/key-value.ts';
import { createSqlOidcAdapter } from '../../src/storage/sql/oidc-adapter.ts';
import { startSweeper } from '../../src/storage/sql/sweeper.ts';
import { openPgliteBackend, type SqlBackend } from './backends.ts';
import { createFakeClock } from './fake-clock.ts';

describe('SQL stores: sweeping expired rows', () => {
  let backend: SqlBackend;
  beforeAll(async () => {
    backend = await openPgliteBackend();
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('deletes expired artifacts and keeps live and never-expiring ones', async () => {
    const clock = createFakeClock();
    const adapter = createSqlOidcAdapter(backend.db, { now: clock.now, sweepIntervalMs: 0 });
    const [short, long, forever] = [randomUUID(), randomUUID(), randomUUID()];
    await adapter.factory('AccessToken').upsert(short, { jti: short }, 10);
    await adapter.factory('AccessToken').upsert(long, { jti: long }, 1000);
    await adapter.factory('RegistrationAccessToken').upsert(forever, { jti: forever }, undefined);
    clock.advance(11);
    expect(await adapter.sweep()).toBe(1);
    const ids = await backend.db.selectFrom('oidc_artifacts').select('id').execute();
    expect(ids.map((row) => row.id).sort()).toEqual([long, forever].sort());
  });

  it('deletes expired key-value entries and keeps live ones', async () => {
    const clock = createFakeClock();
    const kv = createSqlKeyValueStore(backend.db, { now: clock.now, sweepIntervalMs: 0 });
    await kv.put('sweep:short', 1, 10);
    await kv.put('sweep:long', 2, 1000);
    clock.advance(11);
    expect(await kv.sweep()).toBe(1);
    const keys = await backend.db
      .selectFrom('kv_entries')
      .select('key')
      .where('key', 'like', 'sweep:%')
      .execute();
    expect(keys.map((row) => row.key)).toEqual(['sweep:long']);
  });
});

describe('startSweeper', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sweeps every interval until stopped', async () => {
    vi.useFakeTimers();
    const sweep = vi.fn(async () => 0);
    const stop = startSweeper(sweep, { sweepIntervalMs: 1000 });
    await vi.advanceTimersByTimeAsync(3000);
    expect(sweep).toHaveBeenCalledTimes(3);
    stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(sweep).toHaveBeenCalledTimes(3);
  });

  it('skips a tick while the previous sweep is still running', async () => {
    vi.useFakeTimers();
    let finish = () => {};
    const sweep = vi.fn(
      () =>
        new Promise<void>((resolve) => {
          finish = resolve;
        }),
    );
    const stop = startSweeper(sweep, { sweepIntervalMs: 1000 });
    await vi.advanceTimersByTimeAsync(3000);
    expect(sweep).toHaveBeenCalledTimes(1);
    finish();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sweep).toHaveBeenCalledTimes(2);
    stop();
  });

  it('reports a failed sweep and keeps sweeping', async () => {
    vi.useFakeTimers();
    const failure = new Error('database down');
    const sweep = vi.fn().mockRejectedValueOnce(failure).mockResolvedValue(0);
    const onSweepError = vi.fn();
    const stop = startSweeper(sweep, { sweepIntervalMs: 1000, onSweepError });
    await vi.advanceTimersByTimeAsync(2000);
    expect(onSweepError).toHaveBeenCalledWith(failure);
    expect(sweep).toHaveBeenCalledTimes(2);
    stop();
  });

  it('never keeps the process alive', () => {
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const stop = startSweeper(async () => 0, { sweepIntervalMs: 1000 });
    const timer = setIntervalSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    stop();
    setIntervalSpy.mockRestore();
  });
});
