import { describe, expect, it } from 'vitest';
import { presentAvatar, presentNickname } from '../../src/accounts/repository.ts';

describe('presentNickname', () => {
  it('removes C0 control characters and DEL (PostgreSQL refuses NUL in text)', () => {
    expect(presentNickname('A\u0000B\u0007C')).toBe('ABC');
    expect(presentNickname('\u0001Bob\u001f\u007f')).toBe('Bob');
    expect(presentNickname('line\nbreak\ttab\rreturn')).toBe('linebreaktabreturn');
  });

  it('removes C1 control characters and lone surrogates, which no page can show', () => {
    expect(presentNickname('A\u0080B\u009fC')).toBe('ABC');
    expect(presentNickname('A\ud800B\udfffC')).toBe('ABC');
  });

  it('trims what is left, and nothing left (or only blanks) is no nickname', () => {
    expect(presentNickname(' \u0000 Alice \u0007')).toBe('Alice');
    expect(presentNickname('\u0000\u0007')).toBeUndefined();
    expect(presentNickname(' \u0000 ')).toBeUndefined();
    expect(presentNickname('   ')).toBeUndefined();
    expect(presentNickname('')).toBeUndefined();
    expect(presentNickname(undefined)).toBeUndefined();
  });

  it('keeps every script, emoji sequences (joiners, variation selectors, skin tones) and inner spaces', () => {
    for (const nickname of [
      '🐼 熊猫 Panda',
      '张三',
      'Ωμέγα',
      'Женя',
      'محمد',
      'שלום',
      'हिन्दी',
      'ไทย',
      '한국어',
      'にほんご',
      '👨‍👩‍👧‍👦',
      '❤️',
      '👍🏽',
      '🏳️‍🌈',
      'a\u200bb',
      '\u202eevil',
      '微信用户',
    ]) {
      expect(presentNickname(nickname)).toBe(nickname);
    }
  });
});

describe('presentAvatar', () => {
  it('keeps a WeChat avatar URL, trimmed', () => {
    const url = 'https://thirdwx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTKabc/132';
    expect(presentAvatar(` ${url} `)).toBe(url);
  });

  it('takes a URL holding a control character or a lone surrogate as no avatar, every time', () => {
    // Twice each: the check must not carry state from one call to the next.
    for (const bad of [
      'https://a.example/x\u0000y',
      'https://a.example/\u0007',
      'https://a.example/\ud800',
    ]) {
      expect(presentAvatar(bad)).toBeUndefined();
      expect(presentAvatar(bad)).toBeUndefined();
    }
    expect(presentAvatar('   ')).toBeUndefined();
    expect(presentAvatar(undefined)).toBeUndefined();
  });

  it('takes anything but an absolute http(s) URL as no avatar: a relying party may follow a picture', () => {
    for (const bad of [
      'javascript:alert(document.domain)',
      'JavaScript:alert(1)',
      'data:image/png;base64,iVBORw0KGgo=',
      '/avatars/x',
      '//thirdwx.qlogo.cn/a/132',
      'https:///nohost',
      'ftp://thirdwx.qlogo.cn/a/132',
    ]) {
      expect(presentAvatar(bad), bad).toBeUndefined();
    }
    expect(presentAvatar('http://thirdwx.qlogo.cn/a/132')).toBe('http://thirdwx.qlogo.cn/a/132');
  });
});
