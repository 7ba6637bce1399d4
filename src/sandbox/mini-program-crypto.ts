import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * The client-side crypto WeChat does for a mini program (wechat-api.md §9, §10), written here
 * independently of the bridge's decryption so that the two check each other.
 */

/** A new session key: base64 of 16 random bytes (24 characters). */
export function newSessionKey(): string {
  return randomBytes(16).toString('base64');
}

/** AES-128-CBC, key = the session key's 16 bytes, PKCS#7 padding to 16-byte blocks, random iv. */
export function encryptOpenData(
  sessionKey: string,
  plaintext: string,
): { encryptedData: string; iv: string } {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-128-cbc', Buffer.from(sessionKey, 'base64'), iv);
  const encrypted = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { encryptedData: encrypted.toString('base64'), iv: iv.toString('base64') };
}

/** rawData's signature: sha1(rawData + session_key) in hex. */
export function rawDataSignature(rawData: string, sessionKey: string): string {
  return createHash('sha1')
    .update(rawData + sessionKey, 'utf8')
    .digest('hex');
}

/** The session-key signature of checksession: HMAC-SHA256 keyed by the base64 text, lowercase hex. */
export function sessionKeySignature(sessionKey: string, message = ''): string {
  return createHmac('sha256', sessionKey).update(message, 'utf8').digest('hex');
}
