import type { Kysely } from 'kysely';
import type { Database } from '../../storage/schema.ts';
import type { ImageType } from './guard.ts';

/** What the provider needs to name and validate an avatar without reading its bytes. */
export interface AvatarInfo {
  accountId: string;
  /** The WeChat URL the bytes came from. */
  sourceUrl: string;
  contentType: ImageType;
  /** A strong validator of the bytes (quoted, as sent in the ETag header). */
  etag: string;
  updatedAt: Date;
}

export interface StoredAvatar extends AvatarInfo {
  bytes: Uint8Array;
}

/**
 * Where avatar images live: a storage concern behind this port. The default keeps them in the
 * accounts database (`avatars` table, erased with the account by ON DELETE CASCADE).
 *
 * Moving them to object storage (S3, OSS, COS, MinIO): implement this port with the metadata
 * (AvatarInfo) still in SQL and the bytes in a bucket under a key such as `avatars/<accountId>`:
 * `put` uploads the object and then upserts the row, `get` reads the row and the object, `delete`
 * removes both (account deletion calls it explicitly, since a cascade cannot reach the bucket).
 * `GET /avatars/:id` stays on the provider (same URL, ETag and Cache-Control); serving straight
 * from a CDN instead means putting the bucket's public URL in the picture claim and giving up
 * the stable provider URL, which is the point of mirroring.
 */
export interface AvatarStore {
  info(accountId: string): Promise<AvatarInfo | undefined>;
  get(accountId: string): Promise<StoredAvatar | undefined>;
  /** Replaces the account's avatar. */
  put(avatar: StoredAvatar): Promise<void>;
  delete(accountId: string): Promise<void>;
}

export function createSqlAvatarStore(db: Kysely<Database>): AvatarStore {
  return {
    async info(accountId) {
      if (!isUuid(accountId)) return undefined;
      const row = await db
        .selectFrom('avatars')
        .select(['account_id', 'source_url', 'content_type', 'etag', 'updated_at'])
        .where('account_id', '=', accountId)
        .executeTakeFirst();
      return row ? toInfo(row) : undefined;
    },
    async get(accountId) {
      if (!isUuid(accountId)) return undefined;
      const row = await db
        .selectFrom('avatars')
        .selectAll()
        .where('account_id', '=', accountId)
        .executeTakeFirst();
      return row ? { ...toInfo(row), bytes: new Uint8Array(row.bytes) } : undefined;
    },
    async put(avatar) {
      const values = {
        account_id: avatar.accountId,
        source_url: avatar.sourceUrl,
        content_type: avatar.contentType,
        etag: avatar.etag,
        bytes: avatar.bytes,
        updated_at: avatar.updatedAt,
      };
      await db
        .insertInto('avatars')
        .values(values)
        .onConflict((oc) =>
          oc.column('account_id').doUpdateSet({
            source_url: values.source_url,
            content_type: values.content_type,
            etag: values.etag,
            bytes: values.bytes,
            updated_at: values.updated_at,
          }),
        )
        .execute();
    },
    async delete(accountId) {
      if (!isUuid(accountId)) return;
      await db.deleteFrom('avatars').where('account_id', '=', accountId).execute();
    },
  };
}

function toInfo(row: {
  account_id: string;
  source_url: string;
  content_type: string;
  etag: string;
  updated_at: Date;
}): AvatarInfo {
  return {
    accountId: row.account_id,
    sourceUrl: row.source_url,
    contentType: row.content_type as ImageType,
    etag: row.etag,
    updatedAt: new Date(row.updated_at),
  };
}

function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
