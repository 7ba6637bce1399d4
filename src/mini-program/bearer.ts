import type { Context } from 'koa';
import {
  type Account,
  findAccountBySubject,
  findAppIdentities,
  type Identity,
} from '../accounts/repository.ts';
import { issuedBeforeAccount } from '../oidc/find-account.ts';
import { miniProgramAppidOf } from '../oidc/token-exchange/grant.ts';
import type { MiniProgramConnector } from '../upstream/wechat/mini-program.ts';
import type { MiniProgramDeps } from './deps.ts';
import { MiniProgramError, reloginRequired } from './errors.ts';

/** Who is calling: the person's account and their identity in the mini program the token was issued for. */
export interface MiniProgramCaller {
  account: Account;
  identity: Identity;
  connector: MiniProgramConnector;
}

/** The 401 for a token whose account was deleted (or, after a phone recovery, folded into another). */
export const ACCOUNT_GONE = 'the account of this access token no longer exists';

export const invalidToken = (description: string, noCredentials = false) =>
  new MiniProgramError(401, 'invalid_token', description, { noCredentials });

/**
 * The bearer access token, checked with oidc-provider (found, unexpired, its grant alive: revoked
 * or logged-out tokens fail here) and issued to a client bound to a configured mini program. The
 * (appid, openid) it stands for is the identity its grant was issued for (callerIdentity).
 */
export async function authenticate(ctx: Context, deps: MiniProgramDeps): Promise<MiniProgramCaller> {
  const authorization = ctx.get('authorization');
  const match = /^Bearer +([\x21-\x7e]+)\s*$/i.exec(authorization);
  if (!match) {
    // No bearer token at all (no header, or another scheme), or one that is malformed.
    const sentBearer = /^Bearer\b/i.test(authorization);
    throw invalidToken('send the access token as "Authorization: Bearer <access_token>"', !sentBearer);
  }
  const { provider } = deps;
  const token = await provider.AccessToken.find(match[1]!);
  if (!token || token.isExpired) throw invalidToken('the access token is unknown, expired or revoked');
  // Sender-constrained tokens need a proof these endpoints do not check: refuse rather than accept a bare token.
  if (token.jkt || token['x5t#S256'])
    throw invalidToken('sender-constrained access tokens are not accepted here');
  const grant = await provider.Grant.find(token.grantId);
  if (!grant || grant.clientId !== token.clientId || grant.accountId !== token.accountId) {
    throw invalidToken('the access token is unknown, expired or revoked');
  }
  const client = token.clientId ? await provider.Client.find(token.clientId) : undefined;
  const appid = miniProgramAppidOf(client);
  const connector = appid === undefined ? undefined : deps.miniProgram(appid);
  if (!connector) throw invalidToken('this access token was not issued to a mini program client');

  const account = await findAccountBySubject(deps.db, token.accountId);
  // As findAccount rules for userinfo: a token older than its account was a deleted account's.
  if (!account || issuedBeforeAccount(token, account)) throw invalidToken(ACCOUNT_GONE);
  const identity = await callerIdentity(deps, account, connector.app.appid, token.grantId);
  if (!identity) throw reloginRequired('identity_missing');
  return { account, identity, connector };
}

/**
 * The account's identity in this app that the token acts as: the one the token exchange remembered
 * for the grant, while it still belongs to the account. Not the one used last, which may be another
 * device's, with another openid and session key (a recovered account whose old WeChat logged in
 * again, README "Unbinding"); and not the only one left after the token's own was unbound, which
 * would act for a WeChat the token was never issued to. Undefined (log in again) then. A grant from
 * before identities were remembered acts as the account's only identity in the app, if it has one.
 */
async function callerIdentity(
  deps: MiniProgramDeps,
  account: Account,
  appid: string,
  grantId: string | undefined,
): Promise<Identity | undefined> {
  const [identities, remembered] = await Promise.all([
    findAppIdentities(deps.db, account.id, appid),
    grantId === undefined ? undefined : deps.grantIdentities.find(grantId),
  ]);
  if (!remembered) return identities.length === 1 ? identities[0] : undefined;
  if (remembered.appid !== appid) return undefined;
  return identities.find((identity) => identity.openid === remembered.openid);
}
