import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyValueStore } from '../../src/storage/ports.ts';

export interface KeyValueHarness {
  kv: KeyValueStore;
  /** Lets `seconds` pass for the implementation (its clock, and for Redis its TTLs). */
  advance(seconds: number): Promise<void>;
  close(): Promise<void>;
}

/** The KeyValueStore contract (src/storage/ports.ts), run against every implementation. */
export function describeKeyValueConformance(
  name: string,
  open: () => Promise<KeyValueHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`KeyValueStore conformance: ${name}`, () => {
    let h: KeyValueHarness;
    beforeAll(async () => {
      h = await open();
    });
    afterAll(async () => {
      await h?.close();
    });

    const key = () => `test:${randomUUID()}`;

    it('reads a missing key as undefined, with get and take alike', async () => {
      expect(await h.kv.get(key())).toBeUndefined();
      expect(await h.kv.take(key())).toBeUndefined();
    });

    it.each([
      ['an object', { state: 'abc', nested: { list: [1, 2] }, empty: [] }],
      ['a string', 'plain string'],
      ['a number', 42],
      ['an array', ['a', 1, null]],
      ['false', false],
      ['control characters and a lone surrogate', { text: 'a\u0000b\u001f \ud800 😀' }],
    ])('stores and returns %s unchanged', async (_label, value) => {
      const k = key();
      await h.kv.put(k, value, 60);
      expect(await h.kv.get(k)).toEqual(value);
    });

    it('overwrites a value with put', async () => {
      const k = key();
      await h.kv.put(k, 'first', 60);
      await h.kv.put(k, 'second', 60);
      expect(await h.kv.get(k)).toBe('second');
    });

    it('forgets a value once its TTL has passed', async () => {
      const k = key();
      await h.kv.put(k, 'v', 30);
      await h.advance(29);
      expect(await h.kv.get(k)).toBe('v');
      await h.advance(2);
      expect(await h.kv.get(k)).toBeUndefined();
      expect(await h.kv.take(k)).toBeUndefined();
    });

    it('stores with putIfAbsent only when the key is absent, and again once it has expired', async () => {
      const k = key();
      expect(await h.kv.putIfAbsent(k, 'first', 30)).toBe(true);
      expect(await h.kv.putIfAbsent(k, 'second', 30)).toBe(false);
      expect(await h.kv.get(k)).toBe('first');
      await h.advance(31);
      expect(await h.kv.putIfAbsent(k, 'third', 30)).toBe(true);
      expect(await h.kv.get(k)).toBe('third');
    });

    it('lets exactly one of 8 parallel putIfAbsent calls store', async () => {
      const k = key();
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => h.kv.putIfAbsent(k, i, 60)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await h.kv.get(k)).toBe(results.indexOf(true));
    });

    it('reads without consuming with get', async () => {
      const k = key();
      await h.kv.put(k, 'v', 60);
      await h.kv.get(k);
      expect(await h.kv.get(k)).toBe('v');
    });

    it('takes a value once: the second take finds nothing', async () => {
      const k = key();
      await h.kv.put(k, { code: 'x' }, 60);
      expect(await h.kv.take(k)).toEqual({ code: 'x' });
      expect(await h.kv.take(k)).toBeUndefined();
      expect(await h.kv.get(k)).toBeUndefined();
    });

    it('gives the value to exactly one of 8 parallel takes', async () => {
      const k = key();
      await h.kv.put(k, 'only-once', 60);
      const results = await Promise.all(Array.from({ length: 8 }, () => h.kv.take<string>(k)));
      expect(results.filter((r) => r !== undefined)).toEqual(['only-once']);
    });

    it('deletes a key, and deleting a missing key is not an error', async () => {
      const k = key();
      await h.kv.put(k, 'v', 60);
      await h.kv.delete(k);
      expect(await h.kv.get(k)).toBeUndefined();
      await h.kv.delete(key());
    });

    it('deletes a key only while it holds the value given, and says whether it did', async () => {
      const k = key();
      await h.kv.put(k, { sealed: 'first' }, 60);
      expect(await h.kv.deleteIfEquals(k, { sealed: 'other' })).toBe(false);
      expect(await h.kv.get(k)).toEqual({ sealed: 'first' });
      expect(await h.kv.deleteIfEquals(k, { sealed: 'first' })).toBe(true);
      expect(await h.kv.get(k)).toBeUndefined();
      expect(await h.kv.deleteIfEquals(k, { sealed: 'first' })).toBe(false);
      // A string, as the session keys are stored.
      await h.kv.put(k, 'v1.sealed', 60);
      expect(await h.kv.deleteIfEquals(k, 'v1.other')).toBe(false);
      expect(await h.kv.deleteIfEquals(k, 'v1.sealed')).toBe(true);
    });

    it('lets one of 8 parallel compare-and-deletes remove the value, and none a value put after it', async () => {
      const k = key();
      await h.kv.put(k, 'old', 60);
      const results = await Promise.all(Array.from({ length: 8 }, () => h.kv.deleteIfEquals(k, 'old')));
      expect(results.filter(Boolean)).toHaveLength(1);
      await h.kv.put(k, 'new', 60);
      expect(await h.kv.deleteIfEquals(k, 'old')).toBe(false);
      expect(await h.kv.get(k)).toBe('new');
    });

    it('refuses a TTL that is not a positive number of seconds', async () => {
      await expect(h.kv.put(key(), 'v', 0)).rejects.toBeInstanceOf(RangeError);
      await expect(h.kv.putIfAbsent(key(), 'v', -5)).rejects.toBeInstanceOf(RangeError);
    });
  });
}
