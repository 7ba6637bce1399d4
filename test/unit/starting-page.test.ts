import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerWhileStarting } from '../../src/server.ts';

// What the server answers before its app is ready: a person's browser gets a page, framed by
// nobody and running nothing, as every page of ours; a client gets an OAuth error; liveness, up.
describe('the answer while the server starts', () => {
  const server = createServer(answerWhileStarting);
  let url: string;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/auth`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is a page for a browser, with the headers of every page of ours', async () => {
    const page = await fetch(url, { headers: { accept: 'text/html', 'accept-language': 'en' } });
    expect(page.status).toBe(503);
    expect(page.headers.get('retry-after')).toBe('1');
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toContain('temporarily unavailable');
  });

  it('is "up" for liveness: a restart would only start the start again', async () => {
    const live = await fetch(url.replace('/auth', '/healthz'));
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    expect((await fetch(url.replace('/auth', '/readyz'))).status).toBe(503);
  });

  it('is an OAuth error for a client', async () => {
    const answer = await fetch(url);
    expect(answer.status).toBe(503);
    expect(await answer.json()).toEqual({ error: 'temporarily_unavailable', error_description: 'starting' });
  });
});
