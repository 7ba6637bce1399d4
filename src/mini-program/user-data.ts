import { createDecipheriv, createHash, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../config/secret.ts';

/**
 * Why encrypted user data (wechat-api.md §10) was refused. Each is the mini program's fault or a
 * stale session key, never ours, so each becomes a precise 400 (see errors.ts).
 */
export type UserDataProblem =
  /** A field is not standard base64 with padding (a "+" turned into a space by form encoding, say). */
  | 'invalid_base64'
  /** iv is not 16 bytes, or encryptedData is not a non-empty multiple of 16 bytes. */
  | 'invalid_length'
  /**
   * It does not decrypt to WeChat's data: no PKCS#7 padding at its end, no JSON object within, or no
   * watermark { appid, timestamp } in it (a wrong or stale session key, damaged or altered data).
   * One answer for all three: the data is AES-CBC without a MAC and the caller chooses the iv, so
   * telling bad padding apart from the rest would be a padding oracle, with which a caller could
   * decrypt blocks and forge data the server takes for WeChat's, without the session key.
   */
  | 'undecryptable'
  /** The data was produced for another mini program. */
  | 'watermark_appid_mismatch'
  /** The data is older than the configured maximum age (or dated in the future). */
  | 'watermark_stale'
  /** sha1(rawData + session_key) is not the signature given. */
  | 'signature_mismatch';

export class UserDataError extends Error {
  override readonly name = 'UserDataError';
  readonly problem: UserDataProblem;
  /** The request field at fault, when there is one. */
  readonly field: string | undefined;

  constructor(problem: UserDataProblem, field?: string) {
    super(field === undefined ? problem : `${problem}: ${field}`);
    this.problem = problem;
    this.field = field;
  }
}

const BLOCK = 16;
/** Standard base64 (+ and /) with its padding, as WeChat produces and its demo decoders expect. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes strict standard base64; throws invalid_base64 naming the field. */
export function decodeBase64(value: string, field: string): Buffer {
  if (value === '' || !BASE64.test(value)) throw new UserDataError('invalid_base64', field);
  return Buffer.from(value, 'base64');
}

/** encryptedData and iv decoded and checked for shape: everything that can be said without the key. */
export interface EncryptedUserData {
  ciphertext: Buffer;
  iv: Buffer;
}

/** Checks base64 and lengths (iv 16 bytes, encryptedData a non-empty multiple of 16). */
export function decodeEncryptedUserData(input: { encryptedData: string; iv: string }): EncryptedUserData {
  const iv = decodeBase64(input.iv, 'iv');
  if (iv.length !== BLOCK) throw new UserDataError('invalid_length', 'iv');
  const ciphertext = decodeBase64(input.encryptedData, 'encryptedData');
  if (ciphertext.length === 0 || ciphertext.length % BLOCK !== 0) {
    throw new UserDataError('invalid_length', 'encryptedData');
  }
  return { ciphertext, iv };
}

/**
 * AES-128-CBC with PKCS#7 padding, key and iv as §10 describes. Whatever fails (the padding, the
 * JSON) is the same problem, `undecryptable`: see UserDataProblem.
 */
export function decryptUserData(sessionKey: Secret, input: EncryptedUserData): Record<string, unknown> {
  const key = Buffer.from(sessionKey.reveal(), 'base64');
  // The server stored it after checking it is 16 bytes: anything else is our bug, not the client's.
  if (key.length !== BLOCK) throw new Error('stored session key is not 16 bytes');

  const decipher = createDecipheriv('aes-128-cbc', key, input.iv);
  decipher.setAutoPadding(false);
  const padded = Buffer.concat([decipher.update(input.ciphertext), decipher.final()]);
  const plain = unpad(padded);
  if (plain === undefined) throw new UserDataError('undecryptable', 'encryptedData');

  let data: unknown;
  try {
    data = JSON.parse(plain.toString('utf8'));
  } catch {
    throw new UserDataError('undecryptable', 'encryptedData');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UserDataError('undecryptable', 'encryptedData');
  }
  return data as Record<string, unknown>;
}

function unpad(padded: Buffer): Buffer | undefined {
  const pad = padded[padded.length - 1];
  if (pad === undefined || pad < 1 || pad > BLOCK || pad > padded.length) return undefined;
  for (let i = padded.length - pad; i < padded.length; i++) if (padded[i] !== pad) return undefined;
  return padded.subarray(0, padded.length - pad);
}

export interface WatermarkPolicy {
  appid: string;
  /** Epoch seconds now. */
  now: number;
  /** Oldest accepted watermark, seconds. */
  maxAgeSeconds: number;
  /** Clock difference tolerated for watermarks dated in the future, seconds. */
  futureSkewSeconds?: number;
}

/** `watermark.appid` must be this app's and `watermark.timestamp` recent (§10). */
export function checkWatermark(data: Record<string, unknown>, policy: WatermarkPolicy): void {
  const watermark = data.watermark;
  if (typeof watermark !== 'object' || watermark === null) throw new UserDataError('undecryptable');
  const { appid, timestamp } = watermark as Record<string, unknown>;
  if (typeof appid !== 'string' || typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
    throw new UserDataError('undecryptable');
  }
  if (appid !== policy.appid) throw new UserDataError('watermark_appid_mismatch');
  const age = policy.now - timestamp;
  if (age > policy.maxAgeSeconds || age < -(policy.futureSkewSeconds ?? 300)) {
    throw new UserDataError('watermark_stale');
  }
}

/** §10's rawData signature: sha1 over rawData byte for byte followed by the session key's base64 text. */
export function rawDataSignature(rawData: string, sessionKey: Secret): string {
  return createHash('sha1')
    .update(rawData + sessionKey.reveal(), 'utf8')
    .digest('hex');
}

/** Throws signature_mismatch unless signature is sha1(rawData + session_key) (hex, any case). */
export function verifyRawData(rawData: string, signature: string, sessionKey: Secret): void {
  const expected = Buffer.from(rawDataSignature(rawData, sessionKey), 'utf8');
  const given = Buffer.from(signature.toLowerCase(), 'utf8');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new UserDataError('signature_mismatch', 'signature');
  }
}
