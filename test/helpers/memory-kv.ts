import type { KeyValueStore } from '../../src/storage/ports.ts';

/** A KeyValueStore in memory, on the test's clock (the port's semantics, one "Redis" shared by instances). */
export function memoryKv(
  now: () => number = Date.now,
): KeyValueStore & { raw: Map<string, { value: unknown; expiresAt: number }> } {
  const raw = new Map<string, { value: unknown; expiresAt: number }>();
  const live = (key: string) => {
    const entry = raw.get(key);
    return entry && now() < entry.expiresAt ? entry : undefined;
  };
  return {
    raw,
    async put(key, value, ttl) {
      raw.set(key, { value: structuredClone(value), expiresAt: now() + ttl * 1000 });
    },
    async putIfAbsent(key, value, ttl) {
      if (live(key)) return false;
      raw.set(key, { value: structuredClone(value), expiresAt: now() + ttl * 1000 });
      return true;
    },
    async get<T>(key: string) {
      return live(key)?.value as T | undefined;
    },
    async take<T>(key: string) {
      const entry = live(key);
      raw.delete(key);
      return entry?.value as T | undefined;
    },
    async delete(key) {
      raw.delete(key);
    },
    async deleteIfEquals(key, value) {
      const entry = live(key);
      if (!entry || JSON.stringify(entry.value) !== JSON.stringify(value)) return false;
      raw.delete(key);
      return true;
    },
  };
}
