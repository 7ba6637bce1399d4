import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Koa from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { describe, expect, test } from 'vitest';
import { createViews } from '../../src/http/views.ts';
import { createPages } from '../../src/oidc/pages.ts';

/** The page oidc-provider's renderError gets from us, for a request to `route` refused with `error`. */
async function engineErrorPage(route: string, error: string): Promise<string> {
  const req = new IncomingMessage(new Socket());
  req.method = 'GET';
  req.url = route === 'resume' ? '/auth/some-uid' : '/auth?client_id=x';
  req.headers = { accept: 'text/html', 'accept-language': 'zh-CN' };
  const ctx = new Koa().createContext(req, new ServerResponse(req)) as unknown as KoaContextWithOIDC;
  Object.defineProperty(ctx, 'oidc', { value: { route, params: {} } });
  ctx.state = { requestId: 'request-1' };
  const { renderError } = createPages(createViews({ assetBase: '/assets' }));
  await renderError(ctx, { error, error_description: 'described' }, new Error(error));
  return String(ctx.body);
}

/**
 * Whose fault the engine's error page names (src/oidc/pages.ts): the application's request, a login
 * that is over, or ours.
 */
describe("the engine's error page", () => {
  test("says the application's request is wrong when the engine refused it", async () => {
    expect(await engineErrorPage('authorization', 'invalid_request')).toContain('应用发来的登录请求有误');
  });

  test('says the login is over at the resume', async () => {
    expect(await engineErrorPage('resume', 'invalid_request')).toContain('登录已超时或页面已失效');
  });

  test('speaks of no login at an endpoint for applications (userinfo opened in a browser)', async () => {
    const page = await engineErrorPage('userinfo', 'invalid_token');
    expect(page).toContain('这个地址供应用程序调用');
    expect(page).not.toContain('登录未完成');
    expect(page).not.toContain('应用发来的登录请求有误');
  });

  test('blames no request for a failure of ours, at the resume or elsewhere', async () => {
    for (const route of ['resume', 'authorization', 'userinfo']) {
      const page = await engineErrorPage(route, 'server_error');
      expect(page).toContain('出了点问题，请稍后重试。');
      expect(page).not.toContain('登录已超时');
      expect(page).not.toContain('应用发来的');
    }
  });
});
