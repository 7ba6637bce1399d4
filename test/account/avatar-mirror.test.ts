import { describe, expect, it } from 'vitest';
import { AvatarFetchError } from '../../src/accounts/avatars/guard.ts';
import { createAvatarMirror } from '../../src/accounts/avatars/mirror.ts';
import type { AvatarStore, StoredAvatar } from '../../src/accounts/avatars/store.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { memoryKv } from '../helpers/memory-kv.ts';

const ACCOUNT = '5b0c3a52-3f7e-4d0a-9a57-0d3c3b1e8f10';
const PLACEHOLDER =
  'https://thirdwx.qlogo.cn/mmopen/vi_32/POgEwh4mIHO4nibH0KlMECNjjGxQUq24ZEaGT4poC6icRiccVGKSyXwibcPq4BWmiaIGuG1icwxaQX6grC9VemZoJ8rg/132';
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1]);

function memoryStore(): AvatarStore & { rows: Map<string, StoredAvatar> } {
  const rows = new Map<string, StoredAvatar>();
  return {
    rows,
    async info(id) {
      const row = rows.get(id);
      if (!row) return undefined;
      const { bytes: _bytes, ...info } = row;
      return info;
    },
    async get(id) {
      return rows.get(id);
    },
    async put(avatar) {
      rows.set(avatar.accountId, avatar);
    },
    async delete(id) {
      rows.delete(id);
    },
  };
}

function mirror(download: (url: string) => Promise<{ contentType: 'image/png'; bytes: Uint8Array }>) {
  const store = memoryStore();
  const downloads: string[] = [];
  const avatars = createAvatarMirror({
    store,
    kv: memoryKv(),
    policy: { allowedHosts: ['thirdwx.qlogo.cn'], maxBytes: 1024, timeoutMs: 1000 },
    issuer: 'https://id.example.test',
    logger: createLogger({ level: 'silent' }),
    now: () => new Date('2026-11-28T00:00:00Z'),
    retryAfterSeconds: 600,
    download: (url) => {
      downloads.push(url);
      return download(url);
    },
  });
  return { avatars, store, downloads };
}

describe('the avatar mirror', () => {
  it('downloads a changed avatar once and names the provider URL', async () => {
    const { avatars, downloads } = mirror(async () => ({ contentType: 'image/png', bytes: PNG }));
    const account = { id: ACCOUNT, avatar_url: 'https://thirdwx.qlogo.cn/mmopen/real/132' };
    const picture = await avatars.picture(account);
    expect(picture).toMatch(new RegExp(`^https://id\\.example\\.test/avatars/${ACCOUNT}\\?v=`));
    expect(await avatars.picture(account)).toBe(picture);
    expect(downloads).toHaveLength(1);
  });

  it('never lets a placeholder replace a mirrored real avatar', async () => {
    const { avatars, store, downloads } = mirror(async () => ({ contentType: 'image/png', bytes: PNG }));
    const real = await avatars.picture({
      id: ACCOUNT,
      avatar_url: 'https://thirdwx.qlogo.cn/mmopen/real/132',
    });
    expect(await avatars.picture({ id: ACCOUNT, avatar_url: PLACEHOLDER })).toBe(real);
    expect(downloads).toHaveLength(1);
    expect(store.rows.get(ACCOUNT)?.sourceUrl).toBe('https://thirdwx.qlogo.cn/mmopen/real/132');
  });

  it('keeps the previous copy when a new avatar fails to download, and does not retry at once', async () => {
    let fail = false;
    const { avatars, downloads } = mirror(async () => {
      if (fail) throw new AvatarFetchError('timeout', 'slow');
      return { contentType: 'image/png', bytes: PNG };
    });
    const first = await avatars.picture({ id: ACCOUNT, avatar_url: 'https://thirdwx.qlogo.cn/a/132' });
    fail = true;
    const changed = { id: ACCOUNT, avatar_url: 'https://thirdwx.qlogo.cn/b/132' };
    expect(await avatars.picture(changed)).toBe(first);
    expect(await avatars.picture(changed)).toBe(first);
    expect(downloads).toEqual(['https://thirdwx.qlogo.cn/a/132', 'https://thirdwx.qlogo.cn/b/132']);
  });

  it("gives no picture for WeChat's placeholder when no real avatar was mirrored, and downloads nothing", async () => {
    const { avatars, downloads } = mirror(async () => ({ contentType: 'image/png', bytes: PNG }));
    expect(await avatars.picture({ id: ACCOUNT, avatar_url: PLACEHOLDER })).toBeUndefined();
    expect(
      await avatars.picture({ id: ACCOUNT, avatar_url: PLACEHOLDER.replace('https:', 'http:') }),
    ).toBeUndefined();
    expect(downloads).toEqual([]);
  });

  it("falls back to WeChat's URL when nothing was ever mirrored", async () => {
    const { avatars } = mirror(async () => {
      throw new AvatarFetchError('host_not_allowed', 'no');
    });
    const url = 'https://thirdwx.qlogo.cn/a/132';
    expect(await avatars.picture({ id: ACCOUNT, avatar_url: url })).toBe(url);
  });

  it('publishes no URL the mirror refuses to fetch (another host, another scheme) in place of a copy', async () => {
    // As fetchAvatar refuses them.
    const { avatars } = mirror(async () => {
      throw new AvatarFetchError('host_not_allowed', 'no');
    });
    for (const url of ['https://attacker.example/a.png', 'javascript:alert(1)', 'http://10.0.0.1/a']) {
      expect(await avatars.picture({ id: ACCOUNT, avatar_url: url }), url).toBeUndefined();
    }
  });
});
