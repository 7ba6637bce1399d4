import { PRIVATE_JWK_MEMBERS } from './jwks.ts';
import { Secret } from './secret.ts';
import type { Config } from './types.ts';

export const REDACTED = '[redacted]';

/**
 * A printable copy of the configuration with every secret replaced by "[redacted]": app secrets
 * and cookie keys (Secret), client secrets, private JWK members (in oidc.jwks and in any client's
 * inline jwks) and passwords inside the database and Redis URLs (and inside the WeChat base URLs,
 * which loadConfig refuses with credentials, should a configuration built in code have them).
 */
export function redactConfig(config: Config): unknown {
  const copy = {
    ...config,
    storage: {
      ...config.storage,
      databaseUrl: redactUrlPassword(config.storage.databaseUrl),
      redisUrl: redactUrlPassword(config.storage.redisUrl),
    },
    wechat: {
      ...config.wechat,
      openBaseUrl: redactUrlPassword(config.wechat.openBaseUrl) ?? '',
      apiBaseUrl: redactUrlPassword(config.wechat.apiBaseUrl) ?? '',
    },
    clients: config.clients.map((client) =>
      client.client_secret === undefined ? client : { ...client, client_secret: REDACTED },
    ),
  };
  return redactDeep(copy);
}

/** Secrets wherever they are: Secret instances and the private members of anything shaped like a JWK. */
function redactDeep(value: unknown): unknown {
  if (value instanceof Secret) return REDACTED;
  if (Array.isArray(value)) return value.map(redactDeep);
  if (typeof value !== 'object' || value === null) return value;
  const isJwk = typeof (value as { kty?: unknown }).kty === 'string';
  return Object.fromEntries(
    Object.entries(value).map(([key, member]) => [
      key,
      isJwk && PRIVATE_JWK_MEMBERS.includes(key) ? REDACTED : redactDeep(member),
    ]),
  );
}

/**
 * Replaces the password of a URL's userinfo, and password query parameters, keeping the rest as
 * written. Done on the text, not through URL: its setters percent-encode "[redacted]".
 */
export function redactUrlPassword(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(url);
  let text = url;
  if (scheme !== null) {
    const start = scheme[0].length;
    const authorityEnd = indexOrEnd(text, /[/?#]/, start);
    const at = text.lastIndexOf('@', authorityEnd - 1);
    if (at >= start) {
      const colon = text.indexOf(':', start);
      if (colon !== -1 && colon < at) text = `${text.slice(0, colon + 1)}${REDACTED}${text.slice(at)}`;
    }
  }
  // sentinelPassword (a redis+sentinel:// URL) too.
  return text.replace(/([?&](?:[a-z]*password|pass|pwd)=)[^&#]*/gi, `$1${REDACTED}`);
}

function indexOrEnd(text: string, pattern: RegExp, from: number): number {
  const index = text.slice(from).search(pattern);
  return index === -1 ? text.length : from + index;
}
