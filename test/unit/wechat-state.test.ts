import { describe, expect, test } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { createStateSigner, type WeChatFlow } from '../../src/interaction/wechat-state.ts';

const OLD_KEY = new Secret('old-cookie-key-0123456789abcdefghijklmnop');
const NEW_KEY = new Secret('new-cookie-key-0123456789abcdefghijklmnop');

const website: WeChatFlow = { uid: 'interaction-uid-1', kind: 'website', appid: 'wx0123456789abcdef' };
const officialAccount: WeChatFlow = {
  uid: 'interaction-uid-1',
  kind: 'official_account',
  appid: 'wx00112233445566aa',
  scope: 'snsapi_userinfo',
};

describe('WeChat states: signed, bound to the interaction', () => {
  const signer = createStateSigner([NEW_KEY, OLD_KEY]);

  test('a state reads back as the flow it was issued for, on that interaction only', () => {
    const flows: WeChatFlow[] = [
      website,
      officialAccount,
      { ...officialAccount, scope: 'snsapi_base' },
      // From a page that was the client's consent page too: said in the state, and signed.
      { ...officialAccount, consentShown: true },
    ];
    for (const flow of flows) {
      const state = signer.issue(flow);
      expect(signer.read(state, flow.uid)).toEqual(flow);
      expect(signer.read(state, 'another-interaction')).toBeUndefined();
    }
  });

  test('only the characters WeChat documents (a-zA-Z0-9), at most 128, and fresh every time', () => {
    const states = Array.from({ length: 50 }, () => signer.issue(officialAccount));
    for (const state of states) {
      expect(state).toMatch(/^[A-Za-z0-9]{1,128}$/);
    }
    expect(new Set(states).size).toBe(states.length);
  });

  test('any change to a state, or a state signed with a foreign key, is refused', () => {
    const state = signer.issue(website);
    const flip = (at: number) =>
      `${state.slice(0, at)}${state[at] === '0' ? '1' : '0'}${state.slice(at + 1)}`;
    // The kind, the scope, the nonce, the MAC and the appid each count.
    for (const at of [1, 2, 10, 50, state.length - 1])
      expect(signer.read(flip(at), website.uid)).toBeUndefined();
    // Another app in the same slot: the MAC covers the appid.
    expect(signer.read(`${state.slice(0, -18)}wxfedcba9876543210`, website.uid)).toBeUndefined();
    const stranger = createStateSigner([new Secret('someone-else-key-0123456789abcdefghijklmno')]);
    expect(signer.read(stranger.issue(website), website.uid)).toBeUndefined();
    for (const junk of ['', 'forged-state-0123456789', state.toUpperCase(), `${state}x`.repeat(3)])
      expect(signer.read(junk, website.uid)).toBeUndefined();
  });

  test('after a key rotation, states issued with the previous key still read (logins in progress)', () => {
    const before = createStateSigner([OLD_KEY]).issue(website);
    expect(signer.read(before, website.uid)).toEqual(website);
    const retired = createStateSigner([NEW_KEY]);
    expect(retired.read(before, website.uid)).toBeUndefined();
  });
});
