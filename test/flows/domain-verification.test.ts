import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, startBridge } from '../helpers/bridge.ts';

const TOKENS = ['HzPnYOUNdYYAAAAA', 'b9XK2mQ7vL0aT3eR'];

describe('Official Account domain verification files (MP_verify_<token>.txt)', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, wechat: { ...config.wechat, mpVerifyTokens: TOKENS } }),
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test.each(TOKENS)(
    'serves MP_verify_%s.txt at the site root with exactly the token as text/plain',
    async (token) => {
      const response = await fetch(`${bridge.url}/MP_verify_${token}.txt`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain\b/);
      expect(await response.text()).toBe(token);
    },
  );

  test.each([
    ['an unconfigured token', '/MP_verify_NotConfigured0000.txt'],
    ['a configured token in another case', `/MP_verify_${TOKENS[0]?.toLowerCase()}.txt`],
    ['a configured token below the root', `/files/MP_verify_${TOKENS[0]}.txt`],
  ])('answers 404 for %s', async (_name, path) => {
    const response = await fetch(`${bridge.url}${path}`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain(TOKENS[0]);
  });
});
