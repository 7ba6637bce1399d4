import { describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createSealer } from '../../src/mini-program/sealer.ts';

const OLD = new Secret('old-cookie-key-0123456789');
const NEW = new Secret('new-cookie-key-9876543210');
const KEY = 'mini-program:session-key:wx4f4bc4dec97d474b:oGZUI0egBJY1zhBYw2KhdUfwVJJE';
const SESSION_KEY = 'tiihtNczf5v6AKRyjwEUhQ==';

describe('values sealed before they are stored', () => {
  it('hide the value and open only under the key they were stored at', () => {
    const sealer = createSealer([NEW]);
    const sealed = sealer.seal(SESSION_KEY, KEY);
    expect(sealed).not.toContain(SESSION_KEY);
    expect(sealed).not.toContain(Buffer.from(SESSION_KEY, 'base64').toString('hex'));
    expect(sealer.open(sealed, KEY)).toBe(SESSION_KEY);
    expect(sealer.open(sealed, `${KEY}x`)).toBeUndefined();
    expect(sealer.seal(SESSION_KEY, KEY)).not.toBe(sealed);
  });

  it('stay readable after a cookie-key rotation that keeps the old key, and not after it is dropped', () => {
    const sealed = createSealer([OLD]).seal(SESSION_KEY, KEY);
    expect(createSealer([NEW, OLD]).open(sealed, KEY)).toBe(SESSION_KEY);
    expect(createSealer([NEW]).open(sealed, KEY)).toBeUndefined();
  });

  it('refuse anything tampered with or not theirs', () => {
    const sealer = createSealer([NEW]);
    const sealed = sealer.seal(SESSION_KEY, KEY);
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3]!, 'base64url');
    body[0] = body[0]! ^ 1;
    expect(sealer.open([...parts.slice(0, 3), body.toString('base64url')].join('.'), KEY)).toBeUndefined();
    expect(sealer.open(SESSION_KEY, KEY)).toBeUndefined();
    expect(sealer.open('v1.x.y', KEY)).toBeUndefined();
  });
});
