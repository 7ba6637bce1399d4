import type { Interaction } from 'oidc-provider';
import { linkAndAnnounce } from '../accounts/identity-events.ts';
import { findAccountByUnionid, findIdentity } from '../accounts/repository.ts';
import type { OfficialAccountConnector } from '../upstream/wechat/official-account.ts';
import type { OfficialAccountScope, WeChatApp, WeChatIdentity } from '../upstream/wechat/types.ts';
import type { CallbackOutcome } from './callback-claims.ts';
import { exchangeCode, isOutcome, linkAndLogIn, logIn, type WrittenAlongside } from './complete-login.ts';
import type { InteractionDeps } from './deps.ts';
import type { WeChatFlow } from './wechat-state.ts';

/** The first trip's scope: silent snsapi_base unless the app's policy is to always ask. */
export function initialScope(app: WeChatApp): OfficialAccountScope {
  return app.scopePolicy === 'userinfo' ? 'snsapi_userinfo' : 'snsapi_base';
}

export function callbackUrl(deps: InteractionDeps, uid: string): string {
  return `${deps.issuer}/interaction/${uid}/wechat-callback`;
}

/** Our page before the profile is asked for (show.ts, showWeChatAuthorize). */
export function weChatAuthorizePath(uid: string): string {
  return `/interaction/${uid}/wechat-authorize`;
}

/** A trip to WeChat's authorize page with a fresh state bound to the interaction, kind, app and scope. */
export function officialAccountTrip(
  deps: InteractionDeps,
  interaction: Interaction,
  connector: OfficialAccountConnector,
  scope: OfficialAccountScope,
  /** The page it starts from was the client's consent page too (consent.ts). */
  consentShown = false,
): string {
  const flow: WeChatFlow = {
    uid: interaction.uid,
    kind: 'official_account',
    appid: connector.app.appid,
    scope,
    ...(consentShown && { consentShown }),
  };
  const state = deps.states.issue(flow);
  return connector.authorizeUrl({ redirectUri: callbackUrl(deps, interaction.uid), state, scope });
}

/**
 * The callback of an Official Account trip. After snsapi_userinfo: as any WeChat login (profile,
 * unionid required). After snsapi_base (openid only): someone this app already knows, whose account
 * has its unionid and a profile, is logged in silently; anyone else is shown the page that leads to
 * a second trip with snsapi_userinfo. A base token never reaches sns/userinfo.
 */
export async function completeOfficialAccount(
  deps: InteractionDeps,
  interaction: Interaction,
  flow: WeChatFlow,
  connector: OfficialAccountConnector,
  code: string,
  alongside?: WrittenAlongside,
): Promise<CallbackOutcome> {
  const scope = flow.scope ?? 'snsapi_userinfo';
  const result = await exchangeCode(deps, interaction.uid, flow.appid, () =>
    connector.completeLogin(code, scope),
  );
  if (isOutcome(result)) return result;
  // A trip from a page that was the client's consent page too says so in its signed state (the
  // button on it was pressed); the callback checks again that the consent still covers the request.
  if (scope === 'snsapi_userinfo' || result.snapshotUser)
    return linkAndLogIn(deps, interaction, result, alongside, flow.consentShown === true);

  const subject = await silentLogin(deps, result);
  if (subject) {
    deps.logger.info({ uid: interaction.uid, appid: flow.appid }, 'wechat login (silent, snsapi_base)');
    return logIn(deps, interaction, subject, alongside);
  }
  deps.logger.debug({ uid: interaction.uid, appid: flow.appid }, 'snsapi_base: asking for snsapi_userinfo');
  // Through our page first (show.ts, showWeChatAuthorize): the person starts the profile request.
  return { kind: 'redirect', location: weChatAuthorizePath(interaction.uid) };
}

/**
 * The account a snsapi_base identity may log in to without asking: known by this (appid, openid), or
 * (should WeChat ever include it) by the unionid, and with a profile to show. Undefined otherwise.
 */
async function silentLogin(deps: InteractionDeps, identity: WeChatIdentity): Promise<string | undefined> {
  const known = await findIdentity(deps.db, identity.appid, identity.openid);
  const unionid = known?.identity.unionid ?? identity.unionid;
  if (!unionid) return undefined;
  const account = known?.account ?? (await findAccountByUnionid(deps.db, unionid));
  if (!account?.nickname) return undefined;
  // Records the login on the identity (and links it, when it came by unionid); the profile is kept.
  const linked = await linkAndAnnounce(deps, { ...identity, unionid, profile: undefined }, deps.now());
  return linked.account.subject;
}
