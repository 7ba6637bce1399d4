import { createHash } from 'node:crypto';
import type { Logger } from '../../observability/logger.ts';
import type { KeyValueStore } from '../../storage/ports.ts';
import { isPlaceholderAvatar, published } from '../repository.ts';
import {
  AvatarFetchError,
  type AvatarFetchPolicy,
  type DownloadedImage,
  fetchAvatar,
  isAllowedAvatarUrl,
} from './guard.ts';
import type { AvatarInfo, AvatarStore } from './store.ts';

export interface AvatarMirrorDeps {
  store: AvatarStore;
  /** Shared by every instance: one download per (account, URL) at a time, and a pause after a failure. */
  kv: KeyValueStore;
  policy: AvatarFetchPolicy;
  /** The provider's issuer: pictures are `${issuer}/avatars/<account id>?v=<version>`. */
  issuer: string;
  logger: Logger;
  now: () => Date;
  /** How long a failed URL is left alone before a login tries it again, seconds. */
  retryAfterSeconds: number;
  /** Injected in tests; the guarded download by default. */
  download?: (url: string, policy: AvatarFetchPolicy) => Promise<DownloadedImage>;
}

export interface AvatarMirror {
  /**
   * The `picture` claim for an account whose WeChat avatar URL is `avatarUrl`: the provider's own
   * URL once the image is mirrored, downloading it first when the URL changed. Never throws: a
   * failed download keeps the previous copy (or, without one, WeChat's URL). WeChat's placeholder
   * avatar is no picture: undefined, unless a real image was mirrored before.
   */
  picture(
    account: { id: string; avatar_url: string | null },
    /** The stored avatar's metadata when the caller has just read it (null: none); read here otherwise. */
    stored?: AvatarInfo | null,
  ): Promise<string | undefined>;
}

export function createAvatarMirror(deps: AvatarMirrorDeps): AvatarMirror {
  const download = deps.download ?? fetchAvatar;
  const ownUrl = (info: AvatarInfo) =>
    `${deps.issuer}/avatars/${info.accountId}?v=${info.etag.replace(/"/g, '').slice(0, 16)}`;

  async function mirror(accountId: string, sourceUrl: string): Promise<AvatarInfo | undefined> {
    const claimed = await deps.kv.putIfAbsent(
      `avatar-fetch:${digest(`${accountId}\n${sourceUrl}`)}`,
      1,
      deps.retryAfterSeconds,
    );
    // Another instance is downloading it, or it failed a moment ago.
    if (!claimed) return undefined;
    try {
      const image = await download(sourceUrl, deps.policy);
      const info: AvatarInfo = {
        accountId,
        sourceUrl,
        contentType: image.contentType,
        etag: `"${digest(image.bytes)}"`,
        updatedAt: deps.now(),
      };
      await deps.store.put({ ...info, bytes: image.bytes });
      return info;
    } catch (error) {
      // Not `code`: the logger blanks a field of that name, which usually holds a login code.
      const failure = error instanceof AvatarFetchError ? error.code : 'unexpected';
      deps.logger.warn(
        { accountId, failure, reason: error instanceof Error ? error.message : String(error) },
        'avatar not mirrored: the previous picture stays',
      );
      return undefined;
    }
  }

  // WeChat's own URL, published until a copy exists, only when it is one the mirror would fetch:
  // the refusal of another scheme or host (javascript:, a private address) is no picture either.
  const unmirrored = (source: string) => (isAllowedAvatarUrl(source, deps.policy) ? source : undefined);

  return {
    async picture(account, stored) {
      try {
        const current = stored === undefined ? await deps.store.info(account.id) : (stored ?? undefined);
        const source = account.avatar_url;
        if (!source || (current && current.sourceUrl === source))
          return current ? ownUrl(current) : undefined;
        // A placeholder never replaces a real image (the repository keeps it out of avatar_url too),
        // and is no picture of the person: not copied, not published (find-account.ts, `published`).
        if (isPlaceholderAvatar(source)) return current ? ownUrl(current) : undefined;
        const best = (await mirror(account.id, source)) ?? current;
        return best ? ownUrl(best) : unmirrored(source);
      } catch (error) {
        deps.logger.warn({ accountId: account.id, err: error }, 'avatar lookup failed');
        const source = published(account.avatar_url, isPlaceholderAvatar);
        return source === undefined ? undefined : unmirrored(source);
      }
    },
  };
}

function digest(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('base64url');
}
