import { describe, expect, test } from 'vitest';
import { hasScope } from '../../src/oidc/find-account.ts';

describe('hasScope', () => {
  test('finds a scope anywhere in the space-separated list', () => {
    expect(hasScope('profile', 'profile')).toBe(true);
    expect(hasScope('openid profile', 'profile')).toBe(true);
    expect(hasScope('profile openid', 'profile')).toBe(true);
    expect(hasScope('openid profile wechat', 'profile')).toBe(true);
  });

  test('a scope that only contains the name, or is contained in it, is not it', () => {
    expect(hasScope('', 'profile')).toBe(false);
    expect(hasScope('openid', 'profile')).toBe(false);
    expect(hasScope('myprofile openid', 'profile')).toBe(false);
    expect(hasScope('openid profile_extra', 'profile')).toBe(false);
    expect(hasScope('openid prof', 'profile')).toBe(false);
    // A near miss first, the real one after it.
    expect(hasScope('wechatx wechat', 'wechat')).toBe(true);
    expect(hasScope('xwechat wechat', 'wechat')).toBe(true);
  });
});
