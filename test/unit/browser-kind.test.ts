import { describe, expect, it } from 'vitest';
import { browserKind, canUseOfficialAccount, onPhone } from '../../src/interaction/browser-kind.ts';
import { USER_AGENTS } from '../helpers/browser.ts';

describe('browserKind', () => {
  it.each([
    [USER_AGENTS.wechatIos, 'wechat', true],
    [USER_AGENTS.wechatAndroid, 'wechat', true],
    [USER_AGENTS.windowsWechat, 'wechat_desktop', true],
    [USER_AGENTS.macWechat, 'wechat_desktop', true],
    [USER_AGENTS.miniProgram, 'mini_program', true],
    [USER_AGENTS.wecom, 'wecom_phone', false],
    [
      'Mozilla/5.0 (Linux; Android 14; Pixel 8; wv) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36 wxwork/4.1.26 MicroMessenger/7.0.1',
      'wecom_phone',
      false,
    ],
    [USER_AGENTS.wecomDesktop, 'wecom', false],
    [
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) wxwork/4.1.20 MicroMessenger/6.2',
      'wecom',
      false,
    ],
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

  it('counts WeCom on a phone as a phone, which cannot scan its own screen, and WeCom on a computer not', () => {
    expect(onPhone(browserKind(USER_AGENTS.wecom))).toBe(true);
    expect(onPhone(browserKind(USER_AGENTS.mobileSafari))).toBe(true);
    expect(onPhone(browserKind(USER_AGENTS.wecomDesktop))).toBe(false);
    expect(onPhone(browserKind(USER_AGENTS.desktop))).toBe(false);
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
