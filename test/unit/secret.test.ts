import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';

describe('Secret', () => {
  const secret = new Secret('hunter2-the-real-value');

  it('prints as [redacted] however it is printed, and reveal() alone gives the value', () => {
    expect(JSON.stringify({ s: secret })).toBe('{"s":"[redacted]"}');
    expect(String(secret)).toBe('[redacted]');
    expect(`${secret}`).toBe('[redacted]');
    expect(inspect(secret)).toBe('Secret([redacted])');
    expect(inspect({ nested: { secret } }, { depth: 5 })).not.toContain('hunter2');
    expect(secret.reveal()).toBe('hunter2-the-real-value');
  });
});
