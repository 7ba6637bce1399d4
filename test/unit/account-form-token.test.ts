import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { csrfToken, csrfValid, formKeys } from '../../src/account-page/session.ts';
import { Secret } from '../../src/config/secret.ts';

const session = { subject: 'o6_bmasdasdsad6_2sgVt7hMZOPfL', sessionId: 'session-1', loginTs: 1 };
const older = new Secret('an older cookie key, 32 characters or more');
const newer = new Secret('the newer cookie key, 32 characters or more');

describe("the account page's form tokens", () => {
  it('still post from a page opened before the cookie keys rotated, and never with a key no longer kept', () => {
    const before = csrfToken(formKeys([older]), session);
    expect(csrfValid(formKeys([newer, older]), session, before)).toBe(true);
    expect(csrfValid(formKeys([newer]), session, before)).toBe(false);
    expect(csrfToken(formKeys([newer, older]), session)).toBe(csrfToken(formKeys([newer]), session));
  });

  it('belong to one session, and are not keyed by the cookie key itself', () => {
    const keys = formKeys([newer]);
    const token = csrfToken(keys, session);
    expect(csrfValid(keys, { ...session, sessionId: 'session-2' }, token)).toBe(false);
    const withCookieKey = createHmac('sha256', newer.reveal())
      .update(`account-page\n${session.sessionId}`)
      .digest('base64url');
    expect(token).not.toBe(withCookieKey);
    expect(csrfValid(keys, session, withCookieKey)).toBe(false);
  });
});
