import { hkdfSync } from 'node:crypto';
import { inspect } from 'node:util';

/**
 * A value that must never reach a log line, an error message or a page.
 *
 * Everything that prints objects (pino, util.inspect, JSON.stringify, template
 * interpolation through String()) sees "[redacted]"; only `reveal()` gives the
 * value, and callers use it at the last moment (building a request to WeChat,
 * comparing a client secret).
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

/**
 * 32 bytes derived (HKDF-SHA256) from a secret for one purpose (`info`): what signs WeChat states,
 * seals session keys and keys the account page's forms comes from the cookie keys, which every
 * instance shares already, and no two purposes, nor the cookies themselves, share a key.
 */
export function derivedKeyBytes(secret: Secret, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret.reveal(), Buffer.alloc(0), info, 32));
}
