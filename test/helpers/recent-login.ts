import type { Bridge } from './bridge.ts';
import type { TestBrowser } from './browser.ts';

/** oidc-provider's session cookie: its value is the session's id. */
export const SESSION_COOKIE = '_session';

/** The id of the oidc-provider session a test browser holds. */
export function sessionIdOf(browser: TestBrowser): string {
  const id = browser.cookies().find((cookie) => cookie.name === SESSION_COOKIE)?.value;
  if (!id) throw new Error('this browser holds no session');
  return id;
}

/**
 * Moves a session's login `seconds` into the past, as stored: what a browser left logged in on a
 * shared computer looks like, without waiting. oidc-provider stamps loginTs with its own clock, so
 * the injected clock cannot age it; a later login stamps a fresh one, as it would.
 */
export async function ageLogin(
  bridge: Pick<Bridge, 'server'>,
  sessionId: string,
  seconds: number,
): Promise<void> {
  const sessions = bridge.server.stores.oidcAdapter('Session');
  const stored = await sessions.find(sessionId);
  if (typeof stored?.loginTs !== 'number' || typeof stored.exp !== 'number')
    throw new Error(`no logged-in session ${sessionId}`);
  const expiresIn = stored.exp - Math.floor(Date.now() / 1000);
  await sessions.upsert(sessionId, { ...stored, loginTs: stored.loginTs - seconds }, expiresIn);
}
