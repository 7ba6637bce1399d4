import type { Config } from '../../config/types.ts';
import type { AvatarFetchPolicy } from './guard.ts';

/**
 * The download policy of this instance: the configured hosts, the in-process sandbox's origin when
 * it runs (in production only where the configuration allows it), and, outside production, an
 * external WeChat emulator's, so sandbox avatars are mirrored too.
 */
export function avatarFetchPolicy(config: Config, sandboxUrl: string | undefined): AvatarFetchPolicy {
  const { avatars } = config;
  const hosts = new Set(avatars.allowedHosts.map((host) => host.toLowerCase()));
  if (sandboxUrl) hosts.add(new URL(sandboxUrl).host.toLowerCase());
  if (!config.production) {
    for (const base of [config.wechat.openBaseUrl, config.wechat.apiBaseUrl]) {
      const host = new URL(base).host.toLowerCase();
      if (!host.endsWith('weixin.qq.com')) hosts.add(host);
    }
  }
  return { allowedHosts: [...hosts], maxBytes: avatars.maxBytes, timeoutMs: avatars.timeoutMs };
}
