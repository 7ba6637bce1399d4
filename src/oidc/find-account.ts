import type { Kysely } from 'kysely';
import type { FindAccount, Account as OidcAccount } from 'oidc-provider';
import { findAccountBySubject } from '../accounts/repository.ts';
import type { Database } from '../storage/schema.ts';

/** The standard claims each scope releases (OIDC Core 5.4), limited to what WeChat gives us. */
export const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'nickname', 'picture', 'updated_at'],
} as const;

/**
 * oidc-provider's account hook. The accountId oidc-provider keeps in sessions and tokens is the
 * account's subject (the unionid it was created with), so `sub` is the unionid and never changes.
 * A deleted account is not found, which makes its tokens stop working.
 */
export function createFindAccount(db: Kysely<Database>): FindAccount {
  return async (_ctx, sub): Promise<OidcAccount | undefined> => {
    const account = await findAccountBySubject(db, sub);
    if (!account) return undefined;
    return {
      accountId: account.subject,
      async claims() {
        const name = account.nickname ?? undefined;
        return {
          sub: account.subject,
          name,
          nickname: name,
          picture: account.avatar_url ?? undefined,
          updated_at: Math.floor(new Date(account.updated_at).getTime() / 1000),
        };
      },
    };
  };
}
