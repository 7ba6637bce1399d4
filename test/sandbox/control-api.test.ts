import { inflateSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSandbox } from '../../src/sandbox/create-sandbox.ts';
import {
  ALL_APPS,
  OTHER_WEBSITE,
  startTestSandbox,
  type TestSandbox,
  tokensFor,
  UNBOUND,
  WEBSITE,
} from './sandbox-fixture.ts';

const WECHAT_ID = /^o[A-Za-z0-9_-]{27}$/;

/** Width, height and the first pixel of an 8-bit RGB PNG. */
function readPng(bytes: Buffer): { width: number; height: number; firstPixel: string } {
  expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  const idatAt = bytes.indexOf('IDAT');
  const raw = inflateSync(bytes.subarray(idatAt + 4, idatAt + 4 + bytes.readUInt32BE(idatAt - 4)));
  return { width, height, firstPixel: `#${raw.subarray(1, 4).toString('hex')}` };
}

describe('control API and users', () => {
  let sandbox: TestSandbox;
  beforeEach(async () => {
    sandbox = await startTestSandbox();
  });
  afterEach(() => sandbox.close());

  it('starts with the seeded users 张三, 🐼熊猫 and Alice', async () => {
    const answer = await sandbox.send('GET', '/sandbox/users');
    const users = answer.json?.users as Array<{ nickname: string }>;
    expect(users.map((u) => u.nickname)).toEqual(['张三', '🐼熊猫', 'Alice']);
  });

  it('gives WeChat-like ids: one 28-char unionid, a different 28-char openid per app', async () => {
    const [user] = (await sandbox.send('GET', '/sandbox/users')).json!.users as Array<{
      unionid: string;
      openids: Record<string, string>;
    }>;
    expect(user!.unionid).toMatch(WECHAT_ID);
    expect(Object.keys(user!.openids)).toEqual(ALL_APPS.map((app) => app.appid));
    for (const openid of Object.values(user!.openids)) expect(openid).toMatch(WECHAT_ID);
    expect(new Set(Object.values(user!.openids)).size).toBe(ALL_APPS.length);
    expect(user!.openids[WEBSITE.appid]).not.toBe(user!.openids[OTHER_WEBSITE.appid]);
  });

  it('keeps ids stable for a seed across restarts and changes them with another seed', () => {
    const ids = (seed: string) =>
      createSandbox({ apps: ALL_APPS, seed })
        .state.listUsers()
        .map((user) => [user.id, user.unionid]);
    expect(ids('same')).toEqual(ids('same'));
    expect(ids('same')).not.toEqual(ids('other'));
    const openid = (seed: string) => {
      const state = createSandbox({ apps: ALL_APPS, seed }).state;
      return state.openid(WEBSITE.appid, state.listUsers()[0]!.id);
    };
    expect(openid('same')).toBe(openid('same'));
  });

  it('gives people created at run time new ids after a restart unless creations are stable', () => {
    const created = (stableCreations?: boolean) => {
      const state = createSandbox({ apps: ALL_APPS, seed: 'same', stableCreations }).state;
      const person = state.createUser({ nickname: '李四' });
      return { seeded: state.listUsers()[0]!.unionid, created: person.unionid };
    };
    // The built-in sandbox's choice: the data directory keeps the accounts it logged in, and a
    // person created after a restart must not log in as one created before it.
    const [before, after] = [created(false), created(false)];
    expect(after.seeded).toBe(before.seeded);
    expect(after.created).not.toBe(before.created);
    // The standalone sandbox's default: the same seed and the same creations, the same people.
    expect(created().created).toBe(created().created);
  });

  it('creates a user with POST /sandbox/users and answers its ids and avatar', async () => {
    const answer = await sandbox.send('POST', '/sandbox/users', {
      nickname: '李四🐉',
      avatarColor: '#10AEFF',
    });
    expect(answer.status).toBe(201);
    expect(answer.json).toEqual({
      id: expect.any(String),
      nickname: '李四🐉',
      unionid: expect.stringMatching(WECHAT_ID),
      openids: expect.objectContaining({ [WEBSITE.appid]: expect.stringMatching(WECHAT_ID) }),
      avatarUrl: expect.stringMatching(new RegExp(`^${sandbox.url}/sandbox/avatars/[^/]+/132$`)),
    });
    const png = Buffer.from(await (await fetch(answer.json!.avatarUrl as string)).arrayBuffer());
    expect(readPng(png).firstPixel).toBe('#10aeff');
    expect((await sandbox.send('GET', `/sandbox/users/${answer.json!.id}`)).json?.nickname).toBe('李四🐉');
  });

  it.each([
    ['an empty nickname', { nickname: '   ' }],
    ['a missing nickname', {}],
    ['a bad colour', { nickname: 'x', avatarColor: 'blue' }],
    ['an unknown field', { nickname: 'x', colour: '#000000' }],
  ])('refuses to create a user with %s (400)', async (_name, body) => {
    const answer = await sandbox.send('POST', '/sandbox/users', body);
    expect(answer.status).toBe(400);
    expect(answer.json?.error).toEqual(expect.any(String));
  });

  it('refuses control characters in a nickname unless allowControlCharacters is set, then userinfo carries them', async () => {
    const nickname = 'A\u0000B\u0007C';
    const refused = await sandbox.send('POST', '/sandbox/users', { nickname });
    expect(refused.status).toBe(400);
    expect(refused.json?.error).toContain('control characters');

    const created = await sandbox.send('POST', '/sandbox/users', { nickname, allowControlCharacters: true });
    expect(created.status).toBe(201);
    expect(created.json?.nickname).toBe(nickname);
    const tokens = await tokensFor(sandbox, WEBSITE, created.json!.id as string);
    const info = await sandbox.get('/sns/userinfo', {
      access_token: tokens.access_token,
      openid: tokens.openid,
    });
    expect(info.text).toContain('A\\u0000B\\u0007C');
    expect(info.json?.nickname).toBe(nickname);
  });

  it('switches an app’s Open Platform binding at run time with PATCH /sandbox/settings', async () => {
    const user = sandbox.state.listUsers()[0]!;
    const unionidOf = async () => {
      const tokens = await tokensFor(sandbox, WEBSITE, user.id);
      return (
        await sandbox.get('/sns/userinfo', { access_token: tokens.access_token, openid: tokens.openid })
      ).json?.unionid;
    };
    const before = await sandbox.send('GET', '/sandbox/settings');
    expect(before.json?.boundToOpenPlatform).toMatchObject({ [WEBSITE.appid]: true, [UNBOUND.appid]: false });
    expect(await unionidOf()).toBe(user.unionid);

    const unbound = await sandbox.send('PATCH', '/sandbox/settings', {
      boundToOpenPlatform: { [WEBSITE.appid]: false },
    });
    expect(unbound.status).toBe(200);
    expect(unbound.json?.boundToOpenPlatform).toMatchObject({
      [WEBSITE.appid]: false,
      [OTHER_WEBSITE.appid]: true,
    });
    expect(await unionidOf()).toBeUndefined();

    const unknown = await sandbox.send('PATCH', '/sandbox/settings', {
      boundToOpenPlatform: { [WEBSITE.appid]: true, wx_nope: true },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json?.error).toContain('wx_nope');
    expect(await unionidOf()).toBeUndefined();

    await sandbox.send('PATCH', '/sandbox/settings', { boundToOpenPlatform: { [WEBSITE.appid]: true } });
    expect(await unionidOf()).toBe(user.unionid);
  });

  it('creates a user from the developer page form and goes back to it', async () => {
    const answer = await sandbox.postForm('/sandbox/users', { nickname: '表单用户', avatarColor: '#123456' });
    expect(answer.status).toBe(303);
    expect(answer.location).toBe('/sandbox');
    expect(sandbox.state.listUsers().at(-1)?.nickname).toBe('表单用户');
  });

  it('renames a user with PATCH and userinfo follows', async () => {
    const user = sandbox.state.listUsers()[0]!;
    const patched = await sandbox.send('PATCH', `/sandbox/users/${user.id}`, { nickname: '张三丰' });
    expect(patched.json?.nickname).toBe('张三丰');
    const tokens = await tokensFor(sandbox, WEBSITE, user.id);
    const info = await sandbox.get('/sns/userinfo', {
      access_token: tokens.access_token,
      openid: tokens.openid,
    });
    expect(info.json?.nickname).toBe('张三丰');
  });

  it('gives a new avatar a new URL and retires the old one', async () => {
    const user = sandbox.state.listUsers()[0]!;
    const before = (await sandbox.send('GET', `/sandbox/users/${user.id}`)).json?.avatarUrl as string;
    const after = (await sandbox.send('PATCH', `/sandbox/users/${user.id}`, { newAvatar: true })).json
      ?.avatarUrl as string;
    expect(after).not.toBe(before);
    expect((await fetch(before)).status).toBe(404);
    const fresh = await fetch(after);
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('content-type')).toBe('image/png');
  });

  it('removes an avatar with avatarColor null', async () => {
    const user = sandbox.state.listUsers()[0]!;
    const patched = await sandbox.send('PATCH', `/sandbox/users/${user.id}`, { avatarColor: null });
    expect(patched.json?.avatarUrl).toBeNull();
  });

  it('answers 404 for an unknown user', async () => {
    expect((await sandbox.send('PATCH', '/sandbox/users/nobody', { nickname: 'x' })).status).toBe(404);
    expect((await sandbox.send('GET', '/sandbox/users/nobody')).status).toBe(404);
  });

  it('serves avatars as real PNGs of the size in the last segment, 0 meaning 640', async () => {
    const url = (await sandbox.send('GET', '/sandbox/users')).json?.users as Array<{ avatarUrl: string }>;
    const base = url[0]!.avatarUrl.replace(/\/132$/, '');
    for (const [segment, size] of [
      ['132', 132],
      ['46', 46],
      ['0', 640],
    ] as const) {
      const response = await fetch(`${base}/${segment}`);
      expect(response.headers.get('content-type')).toBe('image/png');
      const png = readPng(Buffer.from(await response.arrayBuffer()));
      expect([png.width, png.height]).toEqual([size, size]);
      expect(png.firstPixel).toBe('#07c160');
    }
    expect((await fetch(`${base}/big`)).status).toBe(404);
  });

  it('shows a developer index page with users and apps but no secrets', async () => {
    const page = await sandbox.send('GET', '/sandbox');
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.text).toContain('🐼熊猫');
    expect(page.text).toContain(WEBSITE.appid);
    expect(page.text).toContain('action="/sandbox/users"');
    for (const app of ALL_APPS) expect(page.text).not.toContain(app.secret);
    expect(page.text).toContain('None queued');
  });

  it('lists the queued faults on the index page, each with what it answers and for how many calls', async () => {
    await sandbox.send('POST', '/sandbox/faults', { api: 'sns/userinfo', errcode: -1, times: 2 });
    await sandbox.send('POST', '/sandbox/faults', { api: 'sns/oauth2/access_token', httpStatus: 502 });
    const page = await sandbox.send('GET', '/sandbox');
    expect(page.text).toContain('<code>/sns/userinfo</code>: errcode -1, the next 2 calls');
    expect(page.text).toContain('<code>/sns/oauth2/access_token</code>: HTTP 502, the next call');
    await sandbox.send('DELETE', '/sandbox/faults');
    expect((await sandbox.send('GET', '/sandbox')).text).toContain('None queued');
  });
});
