import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { accountForgotten, accountWritten, createAccountCache } from '../../src/accounts/account-cache.ts';
import type { Account } from '../../src/accounts/repository.ts';

function account(overrides: Partial<Account> = {}): Account {
  const at = new Date('2026-11-25T08:00:00Z');
  return {
    id: randomUUID(),
    subject: `u-${randomUUID()}`,
    nickname: 'Alice',
    avatar_url: null,
    created_at: at,
    updated_at: at,
    profile_updated_at: at,
    last_login_at: at,
    phone_number: null,
    phone_number_verified: false,
    phone_verified_at: null,
    ...overrides,
  };
}

describe('account cache', () => {
  it('serves a copy for its time to live, then asks again', () => {
    let now = 1_000;
    const cache = createAccountCache({ ttlMs: 5_000, maxEntries: 10, now: () => now });
    const alice = account();
    cache.remember(alice);
    now += 4_999;
    expect(cache.get(alice.subject)?.account).toBe(alice);
    now += 1;
    expect(cache.get(alice.subject)).toBeUndefined();
    cache.close();
  });

  it('drops the oldest entries past its size', () => {
    const cache = createAccountCache({ ttlMs: 60_000, maxEntries: 2 });
    const [a, b, c] = [account(), account(), account()];
    for (const each of [a, b, c]) cache.remember(each);
    expect(cache.get(a.subject)).toBeUndefined();
    expect(cache.get(b.subject)?.account).toBe(b);
    expect(cache.get(c.subject)?.account).toBe(c);
    cache.close();
  });

  it('takes the rows this process writes, and never an older one over a newer one', () => {
    const cache = createAccountCache({ ttlMs: 60_000, maxEntries: 10 });
    const before = account();
    const newer = { ...before, nickname: 'Alice 2', updated_at: new Date('2026-11-25T08:00:02Z') };
    const older = { ...before, nickname: 'Alice 1', updated_at: new Date('2026-11-25T08:00:01Z') };
    cache.remember(before);
    accountWritten(newer);
    accountWritten(older);
    expect(cache.get(before.subject)?.account.nickname).toBe('Alice 2');
    cache.close();
  });

  it('keeps the picture across newer rows while the avatar URL is the same', () => {
    const cache = createAccountCache({ ttlMs: 60_000, maxEntries: 10 });
    const alice = account({ avatar_url: 'https://wx.qlogo.cn/a/1' });
    const entry = cache.remember(alice);
    entry.picture = { source: alice.avatar_url, url: Promise.resolve('own-1'), until: entry.expiresAt };
    const later = new Date('2026-11-25T08:00:05Z');
    accountWritten({ ...alice, last_login_at: later, updated_at: later });
    expect(cache.get(alice.subject)?.picture?.source).toBe(alice.avatar_url);
    accountWritten({
      ...alice,
      avatar_url: 'https://wx.qlogo.cn/a/2',
      updated_at: new Date('2026-11-25T08:00:06Z'),
    });
    expect(cache.get(alice.subject)?.picture).toBeUndefined();
    cache.close();
  });

  it('forgets an account this process deleted or unbound, by id', () => {
    const cache = createAccountCache({ ttlMs: 60_000, maxEntries: 10 });
    const alice = account();
    const entry = cache.remember(alice);
    entry.picture = {
      source: null,
      url: Promise.resolve('https://op.example/avatars/x'),
      until: entry.expiresAt,
    };
    accountForgotten(alice.id);
    expect(cache.get(alice.subject)).toBeUndefined();
    expect(cache.remember(alice).picture).toBeUndefined();
    cache.close();
  });

  it('keeps nothing when turned off, and a closed cache hears of no more writes', () => {
    const off = createAccountCache({ ttlMs: 0, maxEntries: 10 });
    const alice = account();
    off.remember(alice);
    expect(off.get(alice.subject)).toBeUndefined();
    const closed = createAccountCache({ ttlMs: 60_000, maxEntries: 10 });
    closed.close();
    accountWritten(alice);
    expect(closed.get(alice.subject)).toBeUndefined();
  });
});
