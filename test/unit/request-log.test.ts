import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { describe, expect, it } from 'vitest';
import { frontDoor } from '../../src/http/front-door.ts';
import { inRequestContext, recordRefusals, requestLog } from '../../src/http/request-log.ts';
import { capturedLog } from '../helpers/captured-log.ts';

async function serve(requests: 'all' | 'failures', trustProxy = true) {
  const { logger, lines } = capturedLog();
  const app = new Koa();
  const refusals = new EventEmitter();
  recordRefusals(refusals);
  const stages = [requestLog(logger, { requests, trustProxy })];
  app.use(frontDoor({ stages, onError: () => {}, around: inRequestContext }));
  app.use((ctx) => {
    if (ctx.path === '/handler-logs') ctx.state.log.info('handled');
    if (ctx.path === '/refused') {
      // As oidc-provider announces a refusal it answered itself, with its error_detail.
      const detail = ctx.query.detail as string;
      refusals.emit(
        'grant.error',
        ctx,
        Object.assign(new Error('refused'), { error: 'invalid_grant', error_detail: detail }),
      );
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant' };
      return;
    }
    const statuses: Record<string, number> = { '/missing': 404, '/down': 503, '/broken': 500 };
    ctx.status = statuses[ctx.path] ?? 200;
    ctx.body = 'x';
    if (ctx.path === '/token') {
      ctx.status = 400;
      ctx.body = { error: 'invalid_grant', error_description: 'grant request is invalid: code secret-code' };
    }
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, lines, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('access lines', () => {
  it('by default, at info only for failed requests; handler lines carry the request id', async () => {
    const { base, lines, close } = await serve('failures');
    const ok = await fetch(`${base}/ok?code=secret-code`);
    await fetch(`${base}/missing`);
    await fetch(`${base}/handler-logs`);
    await close();
    const requestIds = lines.map((line) => line.requestId);
    expect(lines.map((line) => [line.msg, line.path, line.status])).toEqual([
      ['request', '/missing', 404],
      ['handled', undefined, undefined],
    ]);
    expect(requestIds.every((id) => typeof id === 'string')).toBe(true);
    expect(ok.headers.get('x-request-id')).toMatch(/^[\w-]{36}$/);
    expect(JSON.stringify(lines)).not.toContain('secret-code');
  });

  it("a refusal's line names its OAuth error code, never its description", async () => {
    const { base, lines, close } = await serve('failures');
    await fetch(`${base}/token`, { method: 'POST' });
    await fetch(`${base}/missing`);
    await close();
    expect(lines.map((line) => [line.path, line.status, line.error])).toEqual([
      ['/token', 400, 'invalid_grant'],
      ['/missing', 404, undefined],
    ]);
    expect(JSON.stringify(lines)).not.toContain('secret-code');
  });

  it("names oidc-provider's reason for a refusal only when it is plain words: never a run of token-like characters", async () => {
    const { base, lines, close } = await serve('failures');
    const details = [
      'authorization code already consumed',
      // What a reason could carry if a library ever put a value in it: a code, a token, markup.
      'code a1B2c3D4e5F6g7H8i9J0k1L2m3 not found',
      'invalid <script>alert(1)</script>',
    ];
    for (const detail of details) await fetch(`${base}/refused?${new URLSearchParams({ detail })}`);
    await close();
    expect(lines.map((line) => [line.error, line.detail])).toEqual([
      ['invalid_grant', 'authorization code already consumed'],
      ['invalid_grant', undefined],
      ['invalid_grant', undefined],
    ]);
  });

  it('with requests: all, one line for every request, with its id', async () => {
    const { base, lines, close } = await serve('all');
    const ok = await fetch(`${base}/ok`, { headers: { 'x-request-id': 'proxy-id-12345' } });
    await fetch(`${base}/handler-logs`);
    await close();
    expect(ok.headers.get('x-request-id')).toBe('proxy-id-12345');
    expect(lines.map((line) => [line.msg, line.path, line.requestId !== undefined])).toEqual([
      ['request', '/ok', true],
      ['handled', undefined, true],
      ['request', '/handler-logs', true],
    ]);
    expect(lines[0]?.requestId).toBe('proxy-id-12345');
  });

  it('a failure of ours at error, a 503 (a store down, starting, stopping) at warn: an outage is no error per request', async () => {
    const { base, lines, close } = await serve('failures');
    await fetch(`${base}/down`);
    await fetch(`${base}/broken`);
    await close();
    expect(lines.map((line) => [line.path, line.level])).toEqual([
      ['/down', 'warn'],
      ['/broken', 'error'],
    ]);
  });

  it("without a trusted proxy, ignores the client's X-Request-Id and makes its own", async () => {
    const { base, lines, close } = await serve('all', false);
    const ok = await fetch(`${base}/ok`, { headers: { 'x-request-id': 'forged-id-12345' } });
    await close();
    expect(ok.headers.get('x-request-id')).toMatch(/^[\w-]{36}$/);
    expect(JSON.stringify(lines)).not.toContain('forged-id-12345');
  });
});
