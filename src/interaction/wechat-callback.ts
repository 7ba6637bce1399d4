import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { IdentityConflictError } from '../accounts/repository.ts';
import { DEFAULT_WECHAT_TIMEOUT_MS } from '../config/schema.ts';
import { pageContext } from '../http/views.ts';
import { interactionPath } from '../oidc/provider.ts';
import { isStoreOutage } from '../storage/outage.ts';
import { longestCallMs } from '../upstream/wechat/api-call.ts';
import {
  type CallbackOutcome,
  type CodeClaim,
  claimCode,
  codeDigest,
  findClaim,
  recordOutcome,
  takeOverClaim,
  waitFor,
} from './callback-claims.ts';
import {
  DECLINED,
  exchangeCode,
  failed,
  GENERIC,
  IDENTITY_CONFLICT,
  isOutcome,
  linkAndLogIn,
  SNAPSHOT,
  STATE_INVALID,
  type WrittenAlongside,
} from './complete-login.ts';
import type { InteractionDeps } from './deps.ts';
import { renderFailure, UPSTREAM_FAILURES } from './failure.ts';
import { findInteraction, renderExpired, secondsLeft } from './load.ts';
import { completeOfficialAccount } from './official-account.ts';
import { forgetRestart } from './restart.ts';
import { showConsentAfterLogin } from './show.ts';
import { isStateUsedBy, markStateUsed, releaseState, type WeChatFlow } from './wechat-state.ts';

/** How long a delivery without the person's cookies looks for the delivery that has them. */
const COOKIELESS_WAIT_MS = 1000;

/**
 * How long a repeated delivery waits for the first delivery's outcome before taking its claim over
 * as dead. It must outlast a first delivery that is alive but slow: its two WeChat calls
 * (sns/oauth2/access_token, then sns/userinfo), each at its longest (longestCallMs: the code
 * exchange too is retried when WeChat answers -1), plus the store and the database. Taking over a
 * live claim exchanges the code a second time, which WeChat refuses with 40163 (wechat-api.md §3
 * "Double callback", §4), and the person would see that refusal while the first delivery logs
 * them in unseen.
 */
export function callbackOutcomeWaitMs(wechatTimeoutMs: number): number {
  return 2 * longestCallMs(wechatTimeoutMs) + 2000;
}

/**
 * GET /interaction/:uid/wechat-callback?code&state — WeChat sends the browser back here.
 *
 * Only a code exchanged server-side proves who the person is, and only together with a state this
 * interaction issued: a forged or foreign callback logs nobody in. WeChat may deliver the same
 * callback twice (wechat-api.md §3); the first delivery of a code claims it, and a second one repeats
 * the first's outcome instead of exchanging the code again (see callback-claims.ts).
 */
export async function wechatCallback(ctx: Context, deps: InteractionDeps): Promise<void> {
  const uid = String(ctx.params.uid);
  const state = queryString(ctx, 'state');
  const code = queryString(ctx, 'code');
  const flow = state ? deps.states.read(state, uid) : undefined;
  const interaction = await findInteraction(ctx, deps);
  if (!interaction) {
    // WeChat's own copy of a callback arrives without the person's cookies: it gets a neutral page,
    // and only the person's delivery is acted on. Anyone else without the cookie starts again.
    if (flow && code && (await isDeliveredElsewhere(deps, flow, code, uid))) {
      deps.logger.info({ uid, appid: flow.appid }, 'duplicate wechat callback without cookies');
      return renderNeutral(ctx, deps);
    }
    return renderExpired(ctx, deps);
  }
  if (!state || !flow) {
    deps.logger.warn({ uid, hasState: Boolean(state) }, 'wechat callback with an unknown or foreign state');
    return renderFailure(ctx, deps, interaction, STATE_INVALID);
  }
  // WeChat redirects without a code (or not at all) when the person declines.
  if (!code) {
    await markStateUsed(deps.kv, state, secondsLeft(deps, interaction));
    return renderFailure(ctx, deps, interaction, DECLINED);
  }

  const ttl = secondsLeft(deps, interaction);
  // Both marks are taken together, in one round trip, so either delivery of a code delivered twice
  // may take the state's mark first: the mark names the code, and the same code finds it its own.
  const byCode = codeDigest(flow.appid, code);
  let marks: [boolean, boolean];
  try {
    marks = await Promise.all([
      claimCode(deps.kv, flow.appid, code, uid, ttl),
      markStateUsed(deps.kv, state, ttl, byCode),
    ]);
  } catch (error) {
    // Nothing was exchanged yet: the failure page's "try again" starts over with a new code.
    return answer(ctx, deps, interaction, crashed(deps, uid, flow.appid, error));
  }
  const [firstDelivery, markedState] = marks;
  if (!firstDelivery) {
    return repeatFirstDelivery(ctx, deps, { flow, code, interaction, state, markedState });
  }
  if (!markedState && !(await isStateUsedBy(deps.kv, state, byCode))) {
    deps.logger.warn({ uid, appid: flow.appid }, 'wechat callback: a second code for one state');
    await recordOutcome(deps.kv, flow.appid, code, { uid, outcome: failed(STATE_INVALID) }, ttl);
    return answer(ctx, deps, interaction, failed(STATE_INVALID));
  }
  await completeClaimed(ctx, deps, interaction, flow, code, ttl, state);
}

/** The delivery that holds the code's claim: complete the login and record where it went. */
async function completeClaimed(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
  flow: WeChatFlow,
  code: string,
  ttl: number,
  state: string,
): Promise<void> {
  const uid = interaction.uid;
  let recorded = false;
  // A login records where it sends the browser together with the interaction's result.
  const record = (outcome: CallbackOutcome) => {
    recorded = true;
    return recordOutcome(deps.kv, flow.appid, code, { uid, outcome }, ttl);
  };
  let outcome: CallbackOutcome;
  try {
    outcome = await complete(deps, interaction, flow, code, record);
    if (!recorded) await record(outcome);
    // A snapshot page's refusal used the state up for nothing: the real authorization follows.
    if (isSnapshotRefusal(outcome)) await releaseState(deps.kv, state);
  } catch (error) {
    outcome = crashed(deps, uid, flow.appid, error);
    // A duplicate waiting for this delivery gets the same page, instead of waiting in vain.
    await recordOutcome(deps.kv, flow.appid, code, { uid, outcome }, ttl).catch(() => undefined);
  }
  // The consent page that comes next is this answer itself (show.ts); a repeated delivery is sent to it.
  const toConsent = outcome.kind === 'redirect' && outcome.location === interactionPath(uid);
  if (toConsent && (await showConsentAfterLogin(ctx, deps, interaction))) return;
  answer(ctx, deps, interaction, outcome);
}

/**
 * A login that failed on our side (a store, a bug) while its code was claimed or after: the login's own
 * failure page, whose "try again" and "return to the application" (the client hears server_error)
 * are what the person needs, rather than the last-resort page, a dead end. A store out of reach or
 * not answering passes: 503, as WeChat down is; anything else is a 500 and an error line.
 */
function crashed(deps: InteractionDeps, uid: string, appid: string, error: unknown): CallbackOutcome {
  if (isStoreOutage(error)) {
    deps.logger.warn({ uid, appid, err: error }, 'wechat login failed: a store is unavailable');
    return failed(GENERIC, 503);
  }
  deps.logger.error({ uid, appid, err: error }, 'wechat login failed');
  return failed(GENERIC, 500);
}

/**
 * The login of the callback's code. A WeChat identity linked to another account than its unionid's
 * (repository.ts, IdentityConflictError: an app moved to another Open Platform account, or damaged
 * data) cannot be logged in until an administrator looks: the person gets the failure page with a
 * neutral message (retrying cannot help), the log an error line naming the app and the account.
 */
async function complete(
  deps: InteractionDeps,
  interaction: Interaction,
  flow: WeChatFlow,
  code: string,
  alongside: WrittenAlongside,
): Promise<CallbackOutcome> {
  try {
    return await completeLogin(deps, interaction, flow, code, alongside);
  } catch (error) {
    if (!(error instanceof IdentityConflictError)) throw error;
    deps.logger.error(
      { uid: interaction.uid, appid: error.appid, linkedAccountId: error.linkedAccountId },
      'wechat login refused: this WeChat identity is linked to another account than its unionid names; an administrator must resolve it',
    );
    return failed(IDENTITY_CONFLICT, 500);
  }
}

async function completeLogin(
  deps: InteractionDeps,
  interaction: Interaction,
  flow: WeChatFlow,
  code: string,
  alongside: WrittenAlongside,
): Promise<CallbackOutcome> {
  const connector = deps.connectors.byAppid(flow.appid);
  if (!connector || connector.kind !== flow.kind) {
    deps.logger.error(
      { uid: interaction.uid, appid: flow.appid, kind: flow.kind },
      'wechat callback for an app that is no longer configured',
    );
    // Our configuration's fault, as WeChat's refusal of our credentials is: a server error.
    return failed(UPSTREAM_FAILURES.app_config, 500);
  }
  if (connector.kind === 'official_account') {
    return completeOfficialAccount(deps, interaction, flow, connector, code, alongside);
  }
  const identity = await exchangeCode(deps, interaction.uid, flow.appid, () => connector.completeLogin(code));
  if (isOutcome(identity)) return identity;
  return linkAndLogIn(deps, interaction, identity, alongside);
}

/**
 * The same code again, with the person's cookies (the browser itself re-sent the request): wait for
 * the first delivery's outcome and send the browser to the same place. No second exchange, no second
 * login. A code claimed for another interaction is a replay, refused.
 */
async function repeatFirstDelivery(
  ctx: Context,
  deps: InteractionDeps,
  repeat: {
    flow: WeChatFlow;
    code: string;
    interaction: Interaction;
    state: string;
    /** This delivery took the state's mark: the first had not yet, or had let the state go. */
    markedState: boolean;
  },
): Promise<void> {
  const { flow, code, interaction, state } = repeat;
  const uid = interaction.uid;
  const claim = await waitFor(
    async () => settled(await findClaim(deps.kv, flow.appid, code)),
    deps.callbackWaitMs ?? callbackOutcomeWaitMs(DEFAULT_WECHAT_TIMEOUT_MS),
  );
  if (!claim && (await findClaim(deps.kv, flow.appid, code))?.uid === uid) {
    // Our own claim never settled: the delivery holding it died. Take it over (once) and finish.
    const ttl = secondsLeft(deps, interaction);
    if (await takeOverClaim(deps.kv, flow.appid, code, uid, ttl)) {
      deps.logger.warn(
        { uid, appid: flow.appid },
        'wechat callback: taking over a claim whose delivery died',
      );
      return completeClaimed(ctx, deps, interaction, flow, code, ttl, state);
    }
  }
  if (claim?.uid !== uid) {
    deps.logger.warn({ uid, appid: flow.appid, settled: Boolean(claim) }, 'wechat callback: code replayed');
    return renderFailure(ctx, deps, interaction, STATE_INVALID);
  }
  deps.logger.info({ uid, appid: flow.appid, outcome: claim.outcome.kind }, 'duplicate wechat callback');
  // A reload of a snapshot page's refusal marked the state its first delivery had let go for the
  // authorization that follows 使用完整服务 (completeClaimed): let it go again.
  if (repeat.markedState && isSnapshotRefusal(claim.outcome)) await releaseState(deps.kv, state);
  answer(ctx, deps, interaction, claim.outcome);
}

/** Compared by message: an outcome read back from the store is a copy of the SNAPSHOT failure. */
const isSnapshotRefusal = (outcome: CallbackOutcome) =>
  outcome.kind === 'failure' && outcome.failure.message === SNAPSHOT.message;

function settled(claim: CodeClaim | undefined): Required<CodeClaim> | undefined {
  return claim?.outcome ? (claim as Required<CodeClaim>) : undefined;
}

/** Whether the person's own delivery of this code claimed it (now, or within a moment). */
async function isDeliveredElsewhere(
  deps: InteractionDeps,
  flow: WeChatFlow,
  code: string,
  uid: string,
): Promise<boolean> {
  const claim = await waitFor(() => findClaim(deps.kv, flow.appid, code), COOKIELESS_WAIT_MS);
  return claim?.uid === uid;
}

function answer(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
  outcome: CallbackOutcome,
): void {
  if (outcome.kind === 'failure') {
    renderFailure(ctx, deps, interaction, outcome.failure, outcome.status);
    return;
  }
  // Logged in and on to the resume: nothing to restart. (On to the consent page, or to the page
  // before the Official Account's profile request, the login is not over yet.)
  if (outcome.location === interaction.returnTo) forgetRestart(ctx);
  ctx.status = 303;
  ctx.redirect(outcome.location);
}

/** For a copy of a callback nobody is looking at: no error, no cookie, nothing to act on. */
function renderNeutral(ctx: Context, deps: InteractionDeps): void {
  const page = pageContext(ctx);
  ctx.status = 200;
  ctx.type = 'html';
  ctx.body = deps.views.render('notice', page, {
    title: page.t('callback.duplicateTitle'),
    message: page.t('callback.duplicate'),
  });
}

function queryString(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
