import { describe, expect, it } from 'vitest';
import { browserKind, canUseOfficialAccount } from '../../src/interaction/browser-kind.ts';
import { USER_AGENTS } from '../helpers/browser.ts';

describe('browserKind', () => {
  it.each([
    [USER_AGENTS.wechatIos, 'wechat', true],
    [USER_AGENTS.wechatAndroid, 'wechat', true],
    [USER_AGENTS.windowsWechat, 'wechat_desktop', true],
    [USER_AGENTS.macWechat, 'wechat_desktop', true],
    [USER_AGENTS.miniProgram, 'mini_program', true],
    [USER_AGENTS.wecom, 'wecom', false],
    [USER_AGENTS.wecomDesktop, 'wecom', false],
    [USER_AGENTS.desktop, 'other', false],
    [USER_AGENTS.mobileSafari, 'phone', false],
    [
      'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36',
      'phone',
      false,
    ],
  ] as const)('classifies %s as %s', (userAgent, kind, official) => {
    expect(browserKind(userAgent)).toBe(kind);
    expect(canUseOfficialAccount(browserKind(userAgent))).toBe(official);
  });

  it('matches MicroMessenger in any case, as WeChat does', () => {
    expect(browserKind('Mozilla/5.0 MICROMESSENGER/8.0')).toBe('wechat');
    expect(browserKind('Mozilla/5.0 micromessenger/8.0')).toBe('wechat');
  });

  it('treats a missing User-Agent as another browser', () => {
    expect(browserKind(undefined)).toBe('other');
    expect(browserKind('')).toBe('other');
  });
});
