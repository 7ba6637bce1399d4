import { createPrivateKey, createPublicKey, type JsonWebKey, sign, verify } from 'node:crypto';
import type { Findings } from './findings.ts';

export interface PrivateJwks {
  keys: Record<string, unknown>[];
}

/**
 * Members each key type needs, as oidc-provider checks them when it starts (initialize_keystore.js):
 * checked here so that every problem is reported with the rest of the configuration.
 */
const REQUIRED_MEMBERS: Record<string, readonly string[]> = {
  RSA: ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'],
  EC: ['crv', 'x', 'y', 'd'],
  OKP: ['crv', 'x', 'd'],
  AKP: ['alg', 'pub', 'priv'],
};

/** JWK members that hold private key material: never printed. */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth', 'priv'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks a resolved JWKS holds signing keys with their private parts. Returns it, or undefined
 * after recording each problem under `path`. Messages name members, never their values.
 */
export function checkPrivateJwks(value: unknown, path: string, findings: Findings): PrivateJwks | undefined {
  const keys = isRecord(value) ? value.keys : undefined;
  if (!Array.isArray(keys) || keys.length === 0) {
    findings.problem(path, 'must be a JWKS: { "keys": [ ...at least one private key... ] }');
    return undefined;
  }
  const before = findings.problems.length;
  const kids = new Set<string>();
  keys.forEach((key: unknown, index) => {
    const keyPath = `${path}.keys[${index}]`;
    if (!isRecord(key)) {
      findings.problem(keyPath, 'must be a JWK object');
      return;
    }
    if (typeof key.kid === 'string') {
      if (kids.has(key.kid)) findings.problem(`${keyPath}.kid`, `duplicate kid "${key.kid}"`);
      kids.add(key.kid);
    }
    checkKey(key, keyPath, findings);
  });
  return findings.problems.length === before ? { keys: keys as Record<string, unknown>[] } : undefined;
}

function checkKey(key: Record<string, unknown>, path: string, findings: Findings): void {
  const kty = key.kty;
  const required = typeof kty === 'string' ? REQUIRED_MEMBERS[kty] : undefined;
  if (required === undefined) {
    findings.problem(`${path}.kty`, 'must be RSA, EC, OKP or AKP (a signing key pair)');
    return;
  }
  const missing = required.filter((member) => typeof key[member] !== 'string' || key[member] === '');
  if (missing.length > 0) {
    const what = missing.some((member) => PRIVATE_JWK_MEMBERS.includes(member)) ? 'private key ' : '';
    findings.problem(path, `${what}member(s) missing: ${missing.join(', ')}`);
    return;
  }
  if (kty === 'AKP') return; // ML-DSA: left to oidc-provider, Node's JWK import does not cover it everywhere.
  let matches: boolean;
  try {
    matches = isKeyPair(key);
  } catch {
    // The crypto error is not echoed: keep key material out of messages whatever Node puts there.
    matches = false;
  }
  if (!matches)
    findings.problem(path, `is not a valid ${kty} private key (its members do not form a key pair)`);
}

/**
 * Whether the private members belong to the public ones. Node imports an EC JWK without checking
 * that d matches x and y, so a signature made with the private part is verified with the public one.
 */
function isKeyPair(jwk: Record<string, unknown>): boolean {
  const privateKey = createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
  const publicJwk = Object.fromEntries(
    Object.entries(jwk).filter(([name]) => !PRIVATE_JWK_MEMBERS.includes(name)),
  );
  if (jwk.crv === 'X25519' || jwk.crv === 'X448') {
    // Key-agreement keys cannot sign; Node derives their public part from d.
    return createPublicKey(privateKey).export({ format: 'jwk' }).x === jwk.x;
  }
  const publicKey = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' });
  const algorithm = jwk.kty === 'OKP' ? null : 'sha256';
  const probe = Buffer.from('wechat-oidc-bridge key pair check');
  return verify(algorithm, probe, publicKey, sign(algorithm, probe, privateKey));
}
