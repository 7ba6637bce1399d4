import type { SandboxApp } from './types.ts';

/**
 * An absolute http(s) URL whose host[:port] (as URL.host gives it: lower case,
 * default port dropped) is one of the app's callback domains, when it has any.
 */
export function isAllowedRedirectUri(redirectUri: string, app: SandboxApp): boolean {
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (!app.callbackDomains) return true;
  return app.callbackDomains.some((domain) => domain.toLowerCase() === url.host);
}

/**
 * Adds parameters the way WeChat does (§2): `?` or `&` after the existing query,
 * before any `#fragment`, leaving the rest of the URI exactly as the app sent it.
 */
export function appendQuery(redirectUri: string, params: Record<string, string>): string {
  const hashAt = redirectUri.indexOf('#');
  const base = hashAt === -1 ? redirectUri : redirectUri.slice(0, hashAt);
  const fragment = hashAt === -1 ? '' : redirectUri.slice(hashAt);
  const separator = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&';
  return `${base}${separator}${new URLSearchParams(params).toString()}${fragment}`;
}
