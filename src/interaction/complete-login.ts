import type { Interaction } from 'oidc-provider';
import { linkAndAnnounce } from '../accounts/identity-events.ts';
import { SELECT_ACCOUNT, selectsAccount } from '../oidc/prompt-policy.ts';
import { interactionPath } from '../oidc/provider.ts';
import { UpstreamError, type WeChatIdentity } from '../upstream/wechat/types.ts';
import type { CallbackOutcome } from './callback-claims.ts';
import { consentStep, PAGE_CONFIRMS_REMEMBERED, rememberGrant } from './consent.ts';
import type { InteractionDeps } from './deps.ts';
import { type Failure, UPSTREAM_FAILURES } from './failure.ts';
import { hintedSubject } from './id-token-hint.ts';
import { saveResult } from './load.ts';

export const STATE_INVALID: Failure = { message: 'error.stateInvalid', retry: true, abort: 'failed' };
export const DECLINED: Failure = { message: 'error.declined', retry: true, abort: 'declined' };
export const SNAPSHOT: Failure = { message: 'error.snapshotUser', retry: true, abort: 'failed' };
export const GENERIC: Failure = { message: 'error.generic', retry: true, abort: 'failed' };
export const OTHER_PERSON: Failure = { message: 'error.otherPerson', retry: true, abort: 'otherPerson' };
/** The WeChat identity is linked to another account (repository.ts, IdentityConflictError): an administrator's to resolve. */
export const IDENTITY_CONFLICT: Failure = {
  message: 'error.identityConflict',
  retry: false,
  abort: 'failed',
};

export const failed = (failure: Failure, status = 400): CallbackOutcome => ({
  kind: 'failure',
  failure,
  status,
});

/**
 * Runs a connector's code exchange. An UpstreamError becomes the failure page's outcome (and a log
 * line for the admin); anything else is a bug and propagates.
 */
export async function exchangeCode(
  deps: InteractionDeps,
  uid: string,
  appid: string,
  exchange: () => Promise<WeChatIdentity>,
): Promise<WeChatIdentity | CallbackOutcome> {
  try {
    return await exchange();
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    const fields = { uid, appid, ...error.logFields() };
    if (error.code === 'app_config')
      deps.logger.error(fields, 'wechat login failed: check the app configuration');
    // An errcode not documented for the call, or a success without a field the login reads (detail
    // names it): WeChat's answer, not our configuration, is what to look at.
    else if (error.code === 'unexpected')
      deps.logger.error(fields, 'wechat login failed: WeChat answered in a form this server cannot use');
    else deps.logger.warn(fields, 'wechat login failed');
    return failed(UPSTREAM_FAILURES[error.code], pageStatus(error));
  }
}

/**
 * The failure page's status, for monitoring as much as for the browser: WeChat busy or down is a
 * 503; our WeChat app's configuration a 500 and an answer we cannot use a 502, both server errors
 * an operator must see; the rest (a used code, a refusal) the login's own fault, a 400.
 */
function pageStatus(error: UpstreamError): number {
  if (error.transient) return 503;
  if (error.code === 'app_config') return 500;
  if (error.code === 'unexpected') return 502;
  return 400;
}

export function isOutcome(value: WeChatIdentity | CallbackOutcome): value is CallbackOutcome {
  return 'kind' in value && (value.kind === 'redirect' || value.kind === 'failure');
}

/**
 * A person WeChat vouched for: a snapshot-page virtual account and an app without a unionid are
 * refused (nothing is created or linked); anyone else is linked to the account of their unionid
 * (created at the first login) and logged in with it.
 */
export async function linkAndLogIn(
  deps: InteractionDeps,
  interaction: Interaction,
  identity: WeChatIdentity,
  alongside?: WrittenAlongside,
  /** The login came through the page before the Official Account's profile request. */
  throughAuthorizePage = false,
): Promise<CallbackOutcome> {
  const { uid } = interaction;
  if (identity.snapshotUser) {
    deps.logger.info({ uid, appid: identity.appid }, 'wechat login refused: snapshot-page virtual account');
    return failed(SNAPSHOT);
  }
  const { unionid } = identity;
  if (!unionid) {
    deps.logger.warn(
      { uid, appid: identity.appid, kind: identity.kind },
      'WeChat returned no unionid: bind this app to your WeChat Open Platform account (open.weixin.qq.com) so people can log in',
    );
    return failed(UPSTREAM_FAILURES.unionid_missing);
  }
  const consentFor = String(interaction.params.client_id);
  // A new app of a known account is announced in the link's transaction (identity-events.ts).
  const link = await linkAndAnnounce(deps, { ...identity, unionid }, deps.now(), { consentFor });
  const { account, created } = link;
  deps.logger.info(
    { uid, appid: identity.appid, kind: identity.kind, accountId: account.id, created },
    'wechat login',
  );
  return logIn(
    deps,
    interaction,
    account.subject,
    alongside,
    link.alongside?.consentScopes,
    throughAuthorizePage,
  );
}

/**
 * A write that goes out with the login's own (the callback records its outcome this way): both are
 * issued together, so ioredis's auto-pipelining sends them in one round trip.
 */
export type WrittenAlongside = (outcome: CallbackOutcome) => Promise<void>;

/**
 * Logs `subject` in to the interaction. The browser goes on to the authorization endpoint, or first
 * to the consent page when one is sure to follow (consent.ts). A consent remembered from an earlier
 * login is granted here, its grant written with the login's result.
 */
export async function logIn(
  deps: InteractionDeps,
  interaction: Interaction,
  subject: string,
  alongside?: WrittenAlongside,
  /** What the person has allowed this client, when the account link read it already. */
  remembered?: ReadonlySet<string>,
  throughAuthorizePage = false,
): Promise<CallbackOutcome> {
  const hinted = hintedSubject(interaction);
  if (hinted !== undefined && hinted !== subject) {
    // The client asked for the person its id_token_hint names, and someone else scanned: they may
    // scan again with that account, or return to the client, which then hears login_required.
    deps.logger.info({ uid: interaction.uid }, 'wechat login of another person than id_token_hint names');
    return failed(OTHER_PERSON);
  }
  const consent = await consentStep(deps, interaction, subject, remembered, throughAuthorizePage);
  const location = consent.kind === 'page' ? interactionPath(interaction.uid) : interaction.returnTo;
  const outcome: CallbackOutcome = { kind: 'redirect', location };
  // The authentication happened now, at WeChat's callback: its time is the ID token's auth_time,
  // which would otherwise be the resume's, after a consent page the person may have read for minutes.
  const ts = Math.floor(deps.now().getTime() / 1000);
  const result: Record<string, unknown> = { login: { accountId: subject, ts, amr: ['wechat'] } };
  // The person chose the account by scanning with it: the login answers prompt=select_account too.
  if (selectsAccount(interaction.params)) result[SELECT_ACCOUNT] = {};
  if (consent.kind === 'remembered') result.consent = { grantId: consent.grant.jti };
  if (consent.kind === 'page' && consent.confirmsRemembered) result[PAGE_CONFIRMS_REMEMBERED] = true;
  await Promise.all([
    saveResult(interaction, result, false),
    consent.kind === 'remembered' ? consent.grant.save() : undefined,
    consent.kind === 'remembered' && consent.remember
      ? rememberGrant(deps, consent.grant, subject, String(interaction.params.client_id))
      : undefined,
    alongside?.(outcome),
  ]);
  return outcome;
}
