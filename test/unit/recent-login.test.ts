import { describe, expect, it } from 'vitest';
import { isStepUpPurpose, loggedInRecently, returnPath } from '../../src/account-page/recent-login.ts';

const loggedInAt = new Date('2026-12-01T08:00:00.000Z');
const session = (loginTs: number | undefined) => ({ subject: 'sub', sessionId: 'sid', loginTs });
const epoch = (date: Date) => Math.floor(date.getTime() / 1000);
const later = (seconds: number) => new Date(loggedInAt.getTime() + seconds * 1000);

describe('the recent-login rule of the account page', () => {
  it('counts a login as recent up to the window, and not a second later', () => {
    const login = session(epoch(loggedInAt));
    expect(loggedInRecently(login, later(0), 600)).toBe(true);
    expect(loggedInRecently(login, later(600), 600)).toBe(true);
    expect(loggedInRecently(login, later(600.999), 600)).toBe(true);
    expect(loggedInRecently(login, later(601), 600)).toBe(false);
    expect(loggedInRecently(login, later(14 * 86_400), 600)).toBe(false);
  });

  it('counts a session without a login time as old, and a login stamped by a clock running ahead as recent', () => {
    expect(loggedInRecently(session(undefined), later(0), 600)).toBe(false);
    expect(loggedInRecently(session(epoch(later(5))), later(0), 600)).toBe(true);
  });

  it('returns only to fixed pages: a purpose it does not know goes to the account page', () => {
    expect(returnPath('delete')).toBe('/account/delete');
    expect(returnPath('unbind')).toBe('/account');
    for (const forged of [
      'https://evil.example/',
      '//evil.example',
      '/account/delete/confirm',
      'toString',
      '__proto__',
      undefined,
      42,
    ]) {
      expect(isStepUpPurpose(forged)).toBe(false);
      expect(returnPath(forged)).toBe('/account');
    }
  });
});
