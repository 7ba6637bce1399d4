import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { describe, expect, test } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createCookieSigner } from '../../src/oidc/cookie-signer.ts';

const OLD_KEY = 'old-cookie-key-0123456789abcdefghijklmnop';
const NEW_KEY = 'new-cookie-key-0123456789abcdefghijklmnop';

/**
 * A koa app with koa's own keygrip (an array of keys), or with ours: it sets a signed cookie, or
 * answers whether the one it was sent verifies.
 */
async function koaWith(keys: Koa['keys']) {
  const app = new Koa();
  app.keys = keys;
  app.use((ctx) => {
    if (ctx.path === '/set') ctx.cookies.set('_session', 'abc.DEF-123', { signed: true });
    ctx.body = { value: ctx.cookies.get('_session', { signed: true }) ?? null };
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    /** The cookies a signed set produces, as a Cookie header. */
    async issued(): Promise<string> {
      const response = await fetch(`${base}/set`);
      return response.headers
        .getSetCookie()
        .map((line) => line.split(';')[0])
        .join('; ');
    },
    async read(cookie: string): Promise<string | null> {
      const response = await fetch(`${base}/read`, { headers: { cookie } });
      return ((await response.json()) as { value: string | null }).value;
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe('cookie signer', () => {
  test("makes and accepts exactly koa's default signatures, so a rolling upgrade keeps sessions", async () => {
    const koaDefault = await koaWith([NEW_KEY, OLD_KEY]);
    const ours = await koaWith(createCookieSigner([new Secret(NEW_KEY), new Secret(OLD_KEY)]));
    try {
      const fromKoa = await koaDefault.issued();
      const fromUs = await ours.issued();
      expect(fromUs).toBe(fromKoa);
      expect(await ours.read(fromKoa)).toBe('abc.DEF-123');
      expect(await koaDefault.read(fromUs)).toBe('abc.DEF-123');
    } finally {
      await koaDefault.close();
      await ours.close();
    }
  });

  test('signs with the newest key and still reads what an older key signed', () => {
    const before = createCookieSigner([new Secret(OLD_KEY)]);
    const after = createCookieSigner([new Secret(NEW_KEY), new Secret(OLD_KEY)]);
    const data = '_session=abc';
    expect(after.index(data, before.sign(data))).toBe(1);
    expect(after.index(data, after.sign(data))).toBe(0);
    expect(after.sign(data)).not.toBe(before.sign(data));
    expect(createCookieSigner([new Secret(NEW_KEY)]).verify(data, before.sign(data))).toBe(false);
  });

  test('refuses a tampered value, a tampered or truncated signature, and a signature for another value', () => {
    const signer = createCookieSigner([new Secret(NEW_KEY)]);
    const data = '_session=abc';
    const signature = signer.sign(data);
    expect(signer.verify(data, signature)).toBe(true);
    expect(signer.verify('_session=abd', signature)).toBe(false);
    const flipped = `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`;
    expect(signer.verify(data, flipped)).toBe(false);
    expect(signer.verify(data, signature.slice(0, -1))).toBe(false);
    expect(signer.verify(data, '')).toBe(false);
    expect(signer.verify(data, signer.sign('_interaction=abc'))).toBe(false);
  });
});
