import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SECTION_DEFAULTS } from '../../src/config/defaults.ts';
import { type Bridge, STORAGE_SETUPS, startBridge, storageAvailable } from '../helpers/bridge.ts';
import { createSandboxUser, loginAs, relyingParty } from '../helpers/flow.ts';

async function changeAvatar(bridge: Bridge, userId: string, avatarColor: string): Promise<void> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/users/${userId}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ avatarColor }),
  });
  if (response.status >= 300) throw new Error(`sandbox PATCH failed: ${response.status}`);
}

async function pictureOf(bridge: Bridge, user: Awaited<ReturnType<typeof createSandboxUser>>) {
  const rp = await relyingParty(bridge);
  const { tokens } = await loginAs(rp, user, { scope: 'openid profile' });
  const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, user.unionid);
  return String(userinfo.picture);
}

for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`self-hosted avatars (${storage})`, () => {
    let bridge: Bridge;
    beforeAll(async () => {
      bridge = await startBridge({ storage });
    });
    afterAll(async () => bridge?.close());

    test("a sandbox user's picture loads from the provider after the sandbox changes their avatar", async () => {
      const user = await createSandboxUser(bridge, '头像测试');
      const picture = await pictureOf(bridge, user);
      expect(picture.startsWith(`${bridge.url}/avatars/`)).toBe(true);
      const before = await fetch(picture);
      const original = Buffer.from(await before.arrayBuffer());

      await changeAvatar(bridge, user.id, '#123456');
      expect((await fetch(user.avatarUrl)).status).toBe(404);

      const after = await fetch(picture);
      expect(after.status).toBe(200);
      expect(after.headers.get('content-type')).toBe('image/png');
      expect(after.headers.get('cache-control')).toMatch(/max-age=\d+/);
      expect(Buffer.from(await after.arrayBuffer())).toEqual(original);
    });

    test('the avatar answers 304 to a request with its ETag', async () => {
      const user = await createSandboxUser(bridge, 'ETag');
      const picture = await pictureOf(bridge, user);
      const first = await fetch(picture);
      const etag = first.headers.get('etag');
      expect(etag).toBeTruthy();
      // fetch adds Cache-Control: no-cache to conditional requests unless told otherwise.
      const again = await fetch(picture, {
        headers: { 'if-none-match': String(etag), 'cache-control': 'max-age=0' },
      });
      expect(again.status).toBe(304);
    });

    test('a login after the avatar changed serves the new image, also at the old picture URL', async () => {
      const user = await createSandboxUser(bridge, '换头像');
      const firstPicture = await pictureOf(bridge, user);
      const firstBytes = Buffer.from(await (await fetch(firstPicture)).arrayBuffer());

      await changeAvatar(bridge, user.id, '#abcdef');
      const secondPicture = await pictureOf(bridge, user);
      expect(secondPicture).not.toBe(firstPicture);
      const secondBytes = Buffer.from(await (await fetch(secondPicture)).arrayBuffer());
      expect(secondBytes).not.toEqual(firstBytes);
      expect(Buffer.from(await (await fetch(firstPicture)).arrayBuffer())).toEqual(secondBytes);
    });

    test('an unknown avatar id is not found', async () => {
      const response = await fetch(`${bridge.url}/avatars/00000000-0000-4000-8000-000000000000`);
      expect(response.status).toBe(404);
      expect((await fetch(`${bridge.url}/avatars/not-a-uuid`)).status).toBe(404);
    });
  });
}

describe('a failed avatar download', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    // No sandbox avatar fits in 16 bytes: every download fails.
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, avatars: { ...SECTION_DEFAULTS.avatars, maxBytes: 16 } }),
    });
  });
  afterAll(async () => bridge?.close());

  test("never fails the login; the picture stays WeChat's URL", async () => {
    const user = await createSandboxUser(bridge, '下载失败');
    const picture = await pictureOf(bridge, user);
    expect(picture).toBe(user.avatarUrl);
    expect(bridge.logs.join('')).toContain('avatar not mirrored');
  });

  test('the account page then shows no picture rather than one its own policy would block', async () => {
    const user = await createSandboxUser(bridge, '没有头像');
    const { login } = await loginAs(await relyingParty(bridge), user, { scope: 'openid' });
    const page = await login.browser.follow(`${bridge.url}/account`);
    expect(page.url).toBe(`${bridge.url}/account`);
    expect(page.body).toContain('没有头像');
    expect(page.body).not.toContain('id="account-avatar"');
    expect(page.body).not.toContain(user.avatarUrl);
  });
});
