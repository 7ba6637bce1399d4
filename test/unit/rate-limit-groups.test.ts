import { describe, expect, it } from 'vitest';
import { groupOf } from '../../src/http/rate-limits.ts';

// The routers ignore letter case and a trailing slash (oidc-provider's and koa-router's alike):
// whatever reaches a counted endpoint is counted as it.
describe('groupOf', () => {
  it.each([
    ['GET', '/auth', 'interaction'],
    ['GET', '/AUTH/', 'interaction'],
    ['POST', '/Token', 'token'],
    ['POST', '/token/', 'token'],
    ['GET', '/token', undefined],
    ['POST', '/request', 'token'],
    ['GET', '/request', undefined],
    ['GET', '/interaction/uid-1/wechat-callback/', 'callback'],
    ['GET', '/Interaction/uid-1/WeChat-Callback', 'callback'],
    ['POST', '/interaction/uid-1/consent/', 'interaction'],
    ['POST', '/interaction/uid-1/Abort', 'interaction'],
    ['GET', '/interaction/uid-1', undefined],
    ['POST', '/Account/unbind', 'interaction'],
    ['GET', '/me', undefined],
    ['GET', '/', undefined],
  ] as const)('%s %s counts against %s', (method, path, group) => {
    expect(groupOf(method, path)).toBe(group);
  });
});
