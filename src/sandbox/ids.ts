import { createHmac, randomBytes, randomInt } from 'node:crypto';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Deterministic ids: the same (seed, label) always yields the same string, so a
 * sandbox restarted with the same seed hands out the same unionids and openids and
 * a product's stored accounts still match.
 */
export function derive(seed: string, label: string, length: number): string {
  const digest = createHmac('sha256', seed).update(label).digest('base64url');
  return digest.slice(0, length);
}

/** Like WeChat's: 'o', then a prefix shared by one issuer (app or Open Platform account), 28 chars in all. */
export function wechatStyleId(seed: string, issuer: string, subject: string): string {
  return `o${derive(seed, `issuer:${issuer}`, 5)}${derive(seed, `${issuer}:${subject}`, 22)}`;
}

/** Opaque random string of letters and digits (codes, QR session ids). */
export function randomAlnum(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALNUM[randomInt(ALNUM.length)];
  return out;
}

/** User access and refresh tokens: long (WeChat says reserve 512), URL-safe, random. */
export function randomToken(): string {
  return `${randomInt(80, 100)}_${randomBytes(72).toString('base64url')}`;
}

/** The `rid` WeChat appends to every errmsg: three groups of 8 hex digits. */
export function randomRid(): string {
  const hex = randomBytes(12).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 16)}-${hex.slice(16)}`;
}

export function randomSeed(): string {
  return randomBytes(16).toString('hex');
}
