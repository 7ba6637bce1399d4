import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { derivedKeyBytes, type Secret } from '../config/secret.ts';

/**
 * Encrypts short secrets (mini-program session keys, WeChat app access tokens) before they go into
 * the KeyValueStore. Without Redis that store is a table in PostgreSQL or a SQLite file, and a session key
 * must never sit in a database row, a backup or a replica in the clear.
 */
export interface Sealer {
  /** AES-256-GCM; `context` (the storage key) is authenticated, so a value cannot be moved to another key. */
  seal(plain: string, context: string): string;
  /** The plain text; undefined when the value is not ours, was moved, or its key was retired. */
  open(sealed: string, context: string): string | undefined;
}

const VERSION = 'v1';
const INFO = 'wechat-oidc-bridge key-value seal v1';

interface DerivedKey {
  id: string;
  /** A KeyObject: on Node 24 a cipher keyed by a Buffer costs four times as much to set up. */
  key: KeyObject;
}

/**
 * Keys derived (HKDF-SHA256) from the server's cookie keys, newest first: every instance shares
 * them already, and a rotation that keeps the old key last keeps stored values readable.
 */
export function createSealer(secrets: readonly Secret[]): Sealer {
  if (secrets.length === 0) throw new Error('a sealer needs at least one key');
  const keys: DerivedKey[] = secrets.map((secret) => {
    const bytes = derivedKeyBytes(secret, INFO);
    return {
      key: createSecretKey(bytes),
      id: createHash('sha256').update(bytes).digest('base64url').slice(0, 8),
    };
  });
  const current = keys[0]!;

  return {
    seal(plain, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', current.key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return [VERSION, current.id, iv.toString('base64url'), body.toString('base64url')].join('.');
    },

    open(sealed, context) {
      const [version, id, iv, body] = sealed.split('.');
      if (version !== VERSION || iv === undefined || body === undefined) return undefined;
      const derived = keys.find((candidate) => candidate.id === id);
      if (!derived) return undefined;
      const bytes = Buffer.from(body, 'base64url');
      if (bytes.length < 16) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', derived.key, Buffer.from(iv, 'base64url'));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(bytes.subarray(bytes.length - 16));
        return Buffer.concat([
          decipher.update(bytes.subarray(0, bytes.length - 16)),
          decipher.final(),
        ]).toString('utf8');
      } catch {
        return undefined;
      }
    },
  };
}
