import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  codeFor,
  exchange,
  firstUser,
  OTHER_WEBSITE,
  startTestSandbox,
  type TestSandbox,
  UNBOUND,
  WEBSITE,
} from './sandbox-fixture.ts';

const MINUTE = 60_000;

describe('GET /sns/oauth2/access_token (§4)', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  it('exchanges a code for the documented fields, unionid included for a bound app', async () => {
    const user = firstUser(sandbox);
    const answer = await exchange(sandbox, WEBSITE, codeFor(sandbox, WEBSITE, user.id));
    expect(Object.keys(answer.json!)).toEqual([
      'access_token',
      'expires_in',
      'refresh_token',
      'openid',
      'scope',
      'unionid',
    ]);
    expect(answer.json).toMatchObject({
      expires_in: 7200,
      openid: sandbox.state.openid(WEBSITE.appid, user.id),
      scope: 'snsapi_login',
      unionid: user.unionid,
    });
    expect(answer.json!.access_token).toEqual(expect.any(String));
    expect(answer.json!.refresh_token).not.toBe(answer.json!.access_token);
  });

  it('leaves unionid out for an app not bound to an Open Platform account', async () => {
    const answer = await exchange(sandbox, UNBOUND, codeFor(sandbox, UNBOUND));
    expect(answer.json?.openid).toEqual(expect.any(String));
    expect(answer.json).not.toHaveProperty('unionid');
  });

  it('issues opaque codes of about 32 letters and digits', () => {
    expect(codeFor(sandbox, WEBSITE)).toMatch(/^[A-Za-z0-9]{32}$/);
  });

  it('accepts a code once: the second exchange gets 40163 code been used', async () => {
    const code = codeFor(sandbox, WEBSITE);
    expect((await exchange(sandbox, WEBSITE, code)).json?.access_token).toBeDefined();
    const again = await exchange(sandbox, WEBSITE, code);
    expect(again.json?.errcode).toBe(40163);
    expect(again.json?.errmsg).toMatch(/^code been used, rid: /);
  });

  it('still accepts a website code just before 10 minutes', async () => {
    const code = codeFor(sandbox, WEBSITE);
    sandbox.advance(10 * MINUTE - 1);
    expect((await exchange(sandbox, WEBSITE, code)).json?.access_token).toBeDefined();
  });

  it('expires a website code after 10 minutes with 40029', async () => {
    const code = codeFor(sandbox, WEBSITE);
    sandbox.advance(10 * MINUTE);
    expect((await exchange(sandbox, WEBSITE, code)).json?.errcode).toBe(40029);
  });

  it('binds a code to its appid: another app gets 40029 and the code stays usable by its own app', async () => {
    const code = codeFor(sandbox, WEBSITE);
    expect((await exchange(sandbox, OTHER_WEBSITE, code)).json?.errcode).toBe(40029);
    expect((await exchange(sandbox, WEBSITE, code)).json?.access_token).toBeDefined();
  });

  it('answers 40029 for a code it never issued', async () => {
    expect((await exchange(sandbox, WEBSITE, 'A'.repeat(32))).json?.errcode).toBe(40029);
  });

  it('answers 40013 for an unknown appid', async () => {
    const answer = await exchange(
      sandbox,
      { ...WEBSITE, appid: 'wx0000000000000000' },
      codeFor(sandbox, WEBSITE),
    );
    expect(answer.json?.errcode).toBe(40013);
  });

  it('answers 40125 for a wrong secret and does not consume the code', async () => {
    const code = codeFor(sandbox, WEBSITE);
    const answer = await exchange(sandbox, { ...WEBSITE, secret: 'wrong-secret' }, code);
    expect(answer.json?.errcode).toBe(40125);
    expect(answer.text).not.toContain(WEBSITE.secret);
    expect((await exchange(sandbox, WEBSITE, code)).json?.access_token).toBeDefined();
  });

  it('answers 40002 for a grant_type other than authorization_code', async () => {
    const answer = await sandbox.get('/sns/oauth2/access_token', {
      appid: WEBSITE.appid,
      secret: WEBSITE.secret,
      code: codeFor(sandbox, WEBSITE),
      grant_type: 'client_credential',
    });
    expect(answer.json?.errcode).toBe(40002);
  });

  it.each([
    ['appid', 41002],
    ['secret', 41004],
    ['code', 41008],
  ])('answers a missing %s with %i', async (missing, errcode) => {
    const query: Record<string, string> = {
      appid: WEBSITE.appid,
      secret: WEBSITE.secret,
      code: codeFor(sandbox, WEBSITE),
      grant_type: 'authorization_code',
    };
    delete query[missing];
    expect((await sandbox.get('/sns/oauth2/access_token', query)).json?.errcode).toBe(errcode);
  });
});
