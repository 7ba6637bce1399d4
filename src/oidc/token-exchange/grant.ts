import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import { type Client, errors, type FindAccount, type KoaContextWithOIDC } from 'oidc-provider';
import type { AccountNotifier } from '../../accounts/events.ts';
import { linkAndAnnounce } from '../../accounts/identity-events.ts';
import { findIdentity, IdentityConflictError, type LinkResult } from '../../accounts/repository.ts';
import type { GrantIdentityStore } from '../../mini-program/grant-identities.ts';
import type { SessionKeyStore } from '../../mini-program/session-keys.ts';
import type { Logger } from '../../observability/logger.ts';
import { isStoreOutage, OUTAGE_RETRY_AFTER_SECONDS } from '../../storage/outage.ts';
import type { Database } from '../../storage/schema.ts';
import type { MiniProgramConnector, MiniProgramLogin } from '../../upstream/wechat/mini-program.ts';
import { UpstreamError, type WeChatIdentity } from '../../upstream/wechat/types.ts';
import { SUPPORTED_SCOPES } from '../find-account.ts';
import { loggedAlready } from '../logged-errors.ts';
import { MINI_PROGRAM_APPID_METADATA, TOKEN_EXCHANGE_GRANT_TYPE } from './constants.ts';
import { describedError, tokenErrorForUpstream } from './errors.ts';
import { issueExchangeTokens } from './issue-tokens.ts';
import { readTokenExchangeRequest, TOKEN_EXCHANGE_PARAMETERS } from './request.ts';

export interface TokenExchangeDeps {
  /** The connector of a configured mini_program app. */
  miniProgram(appid: string): MiniProgramConnector | undefined;
  sessionKeys: SessionKeyStore;
  /** Where each grant's identity is remembered, for the mini-program endpoints (bearer.ts). */
  grantIdentities: GrantIdentityStore;
  db: Kysely<Database>;
  /** The provider's own account hook, so the tokens carry the same claims as every other grant's. */
  findAccount: FindAccount;
  logger: Logger;
  now: () => Date;
  /** Tells relying parties when a login links a new app to an existing account; absent in some tests. */
  notifier?: AccountNotifier | undefined;
}

/**
 * RFC 8693 token exchange for mini programs: the subject token is a wx.login() code, exchanged at
 * sns/jscode2session for the person's identity and a session key. The session key stays here (in
 * the KeyValueStore); the client gets standard tokens whose `sub` is the unionid, as on the web.
 * Registered with oidc-provider's custom-grant hook, so client authentication, grant_types checks,
 * discovery (grant_types_supported), refresh, userinfo, introspection and revocation are all its own.
 */
export function registerTokenExchange(provider: Provider, deps: TokenExchangeDeps): void {
  provider.registerGrantType(
    TOKEN_EXCHANGE_GRANT_TYPE,
    (ctx) => exchange(ctx, deps),
    TOKEN_EXCHANGE_PARAMETERS,
  );
}

/** The mini_program appid a client is bound to by its registration. */
export function miniProgramAppidOf(client: Client | undefined): string | undefined {
  const value = (client as (Client & Record<string, unknown>) | undefined)?.[MINI_PROGRAM_APPID_METADATA];
  return typeof value === 'string' ? value : undefined;
}

async function exchange(ctx: KoaContextWithOIDC, deps: TokenExchangeDeps): Promise<void> {
  const request = readTokenExchangeRequest(ctx, SUPPORTED_SCOPES);
  const client = ctx.oidc.client!;
  const appid = miniProgramAppidOf(client);
  const connector = appid === undefined ? undefined : deps.miniProgram(appid);
  if (!connector) {
    deps.logger.error(
      { clientId: client.clientId, appid },
      `client may use the token exchange but ${MINI_PROGRAM_APPID_METADATA} names no configured mini_program app`,
    );
    throw new errors.UnauthorizedClient('this client is not bound to a configured mini program');
  }

  let login: MiniProgramLogin;
  try {
    login = await connector.login(request.jsCode);
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    const fields = { clientId: client.clientId, appid, ...error.logFields() };
    if (error.code === 'app_config') {
      deps.logger.error(fields, 'mini program login failed: check the app configuration');
    } else if (error.code === 'unexpected') {
      // WeChat's answer, not our configuration, is what to look at (complete-login.ts).
      deps.logger.error(
        fields,
        'mini program login failed: WeChat answered in a form this server cannot use',
      );
    } else deps.logger.warn(fields, 'mini program login failed');
    throw tokenErrorForUpstream(ctx, error);
  }
  try {
    await logIn(ctx, deps, { clientId: client.clientId, scopes: request.scopes }, login);
  } catch (error) {
    throw storeOutageAfterLogin(ctx, deps, { clientId: client.clientId, appid }, error);
  }
}

/** The person WeChat vouched for, logged in: linked to their account, and the tokens issued. */
async function logIn(
  ctx: KoaContextWithOIDC,
  deps: TokenExchangeDeps,
  { clientId, scopes }: { clientId: string; scopes: Set<string> },
  login: MiniProgramLogin,
): Promise<void> {
  const { identity, sessionKey } = login;
  const { appid } = identity;
  // code2Session names the unionid only for a mini program bound to an Open Platform account (and
  // older rules asked more of the person, wechat-api.md §12). Without it, someone this mini program
  // has logged in before is known by (appid, openid), as the Official Account's silent login does.
  const unionid = identity.unionid ?? (await storedUnionid(deps, identity));
  if (!unionid) {
    deps.logger.warn(
      { clientId, appid, kind: identity.kind },
      'WeChat returned no unionid for someone this mini program has not logged in before, so they were refused ' +
        '(people it has logged in before still get in): if the app is not bound, bind this app to your WeChat ' +
        'Open Platform account (open.weixin.qq.com) so that new people can log in',
    );
    // A subject_token unacceptable by policy: invalid_request (RFC 8693 §2.2.2).
    throw describedError(
      'invalid_request',
      'WeChat named no unionid for this person and they have not logged in through this mini program before, ' +
        'so there is no account to log them in to; usually the mini program is not bound to a WeChat Open Platform account',
    );
  }

  const now = deps.now();
  let link: LinkResult;
  try {
    // A new app of a known account is announced in the link's transaction (identity-events.ts).
    link = await linkAndAnnounce(deps, { ...identity, unionid }, now);
  } catch (error) {
    if (!(error instanceof IdentityConflictError)) throw error;
    throw identityConflict(deps, clientId, error);
  }
  const { account, created } = link;
  await deps.sessionKeys.put(identity.appid, identity.openid, sessionKey);
  const oidcAccount = await deps.findAccount(ctx, account.subject);
  if (!oidcAccount) throw new Error('account vanished right after the login linked it');

  // The grant's tokens act as this identity at the mini-program endpoints (bearer.ts).
  ctx.body = await issueExchangeTokens(
    ctx,
    oidcAccount,
    scopes,
    Math.floor(now.getTime() / 1000),
    (grantId, ttl) => deps.grantIdentities.remember(grantId, identity, ttl),
  );
  deps.logger.info(
    {
      clientId,
      appid,
      kind: identity.kind,
      accountId: account.id,
      created,
      unionidFrom: identity.unionid ? 'wechat' : 'stored_identity',
    },
    'wechat mini program login',
  );
}

/**
 * A store out of reach or not answering once WeChat had spent the wx.login code: 503
 * temporarily_unavailable, with what the mini program must do (the code cannot be exchanged again),
 * as a WeChat outage is answered (errors.ts). Anything else is the engine's server_error.
 */
function storeOutageAfterLogin(
  ctx: KoaContextWithOIDC,
  deps: TokenExchangeDeps,
  fields: { clientId: string; appid: string | undefined },
  error: unknown,
): unknown {
  if (!isStoreOutage(error)) return error;
  deps.logger.warn({ ...fields, err: error }, 'mini program login failed: a store is unavailable');
  ctx.set('Retry-After', String(OUTAGE_RETRY_AFTER_SECONDS));
  return describedError(
    'temporarily_unavailable',
    'the server could not complete the login (its storage did not answer); call wx.login() again and retry shortly (this wx.login code is spent)',
    503,
  );
}

/**
 * The answer to a login whose WeChat identity is linked to another account than its unionid's
 * (repository.ts, IdentityConflictError): logged for the administrator, who has to look, and
 * answered server_error (HTTP 500). Not invalid_grant: RFC 6749 §5.2 means that for a grant that is
 * itself invalid, expired or another client's, and a mini program told so fetches a new wx.login
 * code and tries again, in vain, while the code was good and nothing the client sends can succeed.
 * RFC 6749 §5.2 has no code for a failure of the server, which at the token endpoint is an HTTP 500
 * (§4.1.2.1 defines server_error for the authorization endpoint only because a redirect cannot carry
 * a 500); server_error is what oidc-provider answers there for its own failures, and clients handle it.
 */
function identityConflict(deps: TokenExchangeDeps, clientId: string, error: IdentityConflictError): Error {
  deps.logger.error(
    { clientId, appid: error.appid, linkedAccountId: error.linkedAccountId },
    'mini program login refused: this WeChat identity is linked to another account than its unionid names; an administrator must resolve it',
  );
  return loggedAlready(
    describedError(
      'server_error',
      'this WeChat user cannot be logged in because of a problem with their account on this server; the administrator has been told (retrying will not help)',
      500,
    ),
  );
}

/** The unionid stored with this mini program's (appid, openid) at an earlier login; undefined if none. */
async function storedUnionid(deps: TokenExchangeDeps, identity: WeChatIdentity): Promise<string | undefined> {
  const known = await findIdentity(deps.db, identity.appid, identity.openid);
  return known?.identity.unionid ?? undefined;
}
