import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  codeFor,
  exchange,
  RID,
  startTestSandbox,
  type TestSandbox,
  tokensFor,
  WEBSITE,
} from './sandbox-fixture.ts';

const API = 'sns/oauth2/access_token';

describe('fault injection (POST/GET/DELETE /sandbox/faults)', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  const inject = (fault: Record<string, unknown>) => sandbox.send('POST', '/sandbox/faults', fault);

  it('answers the next call with the injected errcode, then recovers', async () => {
    expect((await inject({ api: API, errcode: -1 })).status).toBe(201);
    const code = codeFor(sandbox, WEBSITE);
    const failed = await exchange(sandbox, WEBSITE, code);
    expect(failed.status).toBe(200);
    expect(failed.json?.errcode).toBe(-1);
    expect(failed.json?.errmsg).toMatch(/^system error/);
    expect(failed.json?.errmsg).toMatch(RID);
    // injected before processing: the code was not consumed
    expect((await exchange(sandbox, WEBSITE, code)).json?.access_token).toBeDefined();
  });

  it('repeats a fault for `times` calls', async () => {
    await inject({ api: API, errcode: 45011, times: 2 });
    const code = codeFor(sandbox, WEBSITE);
    expect((await exchange(sandbox, WEBSITE, code)).json?.errcode).toBe(45011);
    expect((await exchange(sandbox, WEBSITE, code)).json?.errmsg).toMatch(/^api minute-quota reach limit/);
    expect((await exchange(sandbox, WEBSITE, code)).json?.access_token).toBeDefined();
  });

  it('affects only the API it names', async () => {
    await inject({ api: '/sns/userinfo', errcode: 48001 });
    expect((await exchange(sandbox, WEBSITE, codeFor(sandbox, WEBSITE))).json?.access_token).toBeDefined();
  });

  it('can answer after processing, so the code is consumed and a retry gets 40163', async () => {
    await inject({ api: API, errcode: -1, afterProcessing: true });
    const code = codeFor(sandbox, WEBSITE);
    expect((await exchange(sandbox, WEBSITE, code)).json?.errcode).toBe(-1);
    expect((await exchange(sandbox, WEBSITE, code)).json?.errcode).toBe(40163);
  });

  it('answers HTTP 502 with an HTML gateway page', async () => {
    await inject({ api: API, httpStatus: 502 });
    const answer = await exchange(sandbox, WEBSITE, codeFor(sandbox, WEBSITE));
    expect(answer.status).toBe(502);
    expect(answer.json).toBeUndefined();
    expect(answer.text).toContain('<h1>502</h1>');
  });

  it('answers an empty body with HTTP 200', async () => {
    await inject({ api: 'sns/userinfo', emptyBody: true });
    const tokens = await tokensFor(sandbox, WEBSITE);
    const answer = await sandbox.get('/sns/userinfo', {
      access_token: tokens.access_token,
      openid: tokens.openid,
    });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('');
  });

  it('holds a delayed call until the delay ends or the faults are cleared', async () => {
    await inject({ api: 'sns/auth', delayMs: 600_000 });
    const tokens = await tokensFor(sandbox, WEBSITE);
    let settled = false;
    const call = sandbox
      .get('/sns/auth', { access_token: tokens.access_token, openid: tokens.openid })
      .finally(() => {
        settled = true;
      });
    await vi.waitFor(() => expect(sandbox.state.faults.pendingDelays).toBe(1));
    expect(settled).toBe(false);
    expect((await sandbox.send('GET', '/sandbox/faults')).json?.pendingDelays).toBe(1);
    expect((await sandbox.send('DELETE', '/sandbox/faults')).status).toBe(204);
    expect((await call).json).toEqual({ errcode: 0, errmsg: 'ok' });
  });

  it('lists queued faults and clears them with DELETE', async () => {
    await inject({ api: API, errcode: 40164, times: 3 });
    const listed = await sandbox.send('GET', '/sandbox/faults');
    expect(listed.json?.faults).toEqual([expect.objectContaining({ api: API, errcode: 40164, times: 3 })]);
    expect(listed.json?.knownApis).toEqual(
      expect.arrayContaining([
        'sns/auth',
        'sns/oauth2/access_token',
        'sns/oauth2/refresh_token',
        'sns/userinfo',
      ]),
    );
    await sandbox.send('DELETE', '/sandbox/faults');
    expect((await sandbox.send('GET', '/sandbox/faults')).json?.faults).toEqual([]);
    expect((await exchange(sandbox, WEBSITE, codeFor(sandbox, WEBSITE))).json?.access_token).toBeDefined();
  });

  it.each([
    ['an unknown api', { api: 'sns/oauth2/acces_token', errcode: -1 }],
    ['no outcome', { api: API }],
    ['two outcomes', { api: API, errcode: -1, httpStatus: 502 }],
    ['errcode 0', { api: API, errcode: 0 }],
    ['an unknown field', { api: API, errcode: -1, tims: 2 }],
  ])('refuses a fault with %s (400)', async (_name, fault) => {
    const answer = await inject(fault);
    expect(answer.status).toBe(400);
    expect(answer.json?.error).toEqual(expect.any(String));
  });

  it('offers the same through Sandbox.state for in-process tests', async () => {
    sandbox.state.injectFault({ api: API, errcode: 40029 });
    expect((await exchange(sandbox, WEBSITE, codeFor(sandbox, WEBSITE))).json?.errcode).toBe(40029);
    expect(() => sandbox.state.injectFault({ api: 'nope', errcode: -1 })).toThrow(/unknown api/);
  });
});
