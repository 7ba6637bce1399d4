import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, test } from 'vitest';
import { eventSigner } from '../../src/accounts/webhooks.ts';

/**
 * Which key signs account events and with what algorithm (src/accounts/webhooks.ts): verified by
 * jose against the public keys, as a relying party would read them from /jwks.
 */
type Jwk = Record<string, unknown>;

const privateJwk = (key: import('node:crypto').KeyObject, extra: Jwk = {}): Jwk => ({
  ...key.export({ format: 'jwk' }),
  kid: randomUUID(),
  ...extra,
});
const ec = (namedCurve: string, extra?: Jwk) =>
  privateJwk(generateKeyPairSync('ec', { namedCurve }).privateKey, extra);
const rsa = (extra?: Jwk) =>
  privateJwk(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, extra);
const ed25519 = (extra?: Jwk) => privateJwk(generateKeyPairSync('ed25519').privateKey, extra);

/** The public half of a JWKS, as /jwks publishes it. */
const published = (keys: Jwk[]) => ({
  keys: keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub as import('jose').JWK),
});

async function signedWith(keys: Jwk[]) {
  const token = await eventSigner({ keys })({ iss: 'https://id.example.test', aud: 'rp', sub: 'u1' });
  const header = decodeProtectedHeader(token);
  const { payload } = await jwtVerify(token, createLocalJWKSet(published(keys)), {
    issuer: 'https://id.example.test',
    audience: 'rp',
    typ: 'secevent+jwt',
  });
  return { header, payload };
}

describe('the account events signing key', () => {
  test('the first RS256 key signs when there is one, whatever comes before it', async () => {
    const keys = [ec('P-256', { alg: 'ES256' }), rsa({ alg: 'RS256' }), rsa({ alg: 'RS256' })];
    const { header, payload } = await signedWith(keys);
    expect(header).toMatchObject({ alg: 'RS256', kid: keys[1]?.kid, typ: 'secevent+jwt' });
    expect(payload.sub).toBe('u1');
  });

  test.each([
    ['P-256', 'ES256'],
    ['P-384', 'ES384'],
    ['P-521', 'ES512'],
  ])('an EC %s key without alg signs with %s', async (curve, alg) => {
    const { header } = await signedWith([ec(curve)]);
    expect(header.alg).toBe(alg);
  });

  test('an Ed25519 key signs with EdDSA', async () => {
    expect((await signedWith([ed25519()])).header.alg).toBe('EdDSA');
  });

  test("an RSA key named for PS256 is used with its own algorithm, not taken for RS256's", async () => {
    const { header } = await signedWith([rsa({ alg: 'PS256' })]);
    expect(header.alg).toBe('PS256');
  });

  test('a JWKS with no key of a known algorithm is refused when the sender is made', () => {
    expect(() => eventSigner({ keys: [] })).toThrow(/no signing key/);
    expect(() => eventSigner({ keys: [ec('secp256k1')] })).toThrow(/no signing key/);
  });
});
