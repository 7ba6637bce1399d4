import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { pageContext } from '../http/views.ts';
import type { MessageKey } from '../i18n/messages.ts';
import type { UpstreamErrorCode } from '../upstream/wechat/types.ts';
import type { InteractionDeps } from './deps.ts';
import { uiLocales } from './load.ts';

/** Why a login stopped, as the abort form tells the abort step (which turns it into an OAuth error). */
export type AbortReason = 'cancelled' | 'declined' | 'unavailable' | 'failed' | 'otherPerson';

export const ABORT_ERRORS: Record<AbortReason, { error: string; error_description: string }> = {
  cancelled: { error: 'access_denied', error_description: 'End-User aborted interaction' },
  // On WeChat's page or on our consent page.
  declined: { error: 'access_denied', error_description: 'End-User declined the authorization' },
  unavailable: { error: 'temporarily_unavailable', error_description: 'WeChat is temporarily unavailable' },
  failed: { error: 'server_error', error_description: 'WeChat login could not be completed' },
  // OpenID Connect Core 3.1.2.1: the End-User logged in is not the one id_token_hint names.
  otherPerson: {
    error: 'login_required',
    error_description: 'the End-User who logged in is not the one id_token_hint names',
  },
};

export interface Failure {
  message: MessageKey;
  /** Whether scanning again can help (shows "try again"). */
  retry: boolean;
  abort: AbortReason;
}

/** What the person is told, and what the client hears if they give up, for each upstream failure. */
export const UPSTREAM_FAILURES: Record<UpstreamErrorCode, Failure> = {
  code_invalid: { message: 'error.codeInvalid', retry: true, abort: 'failed' },
  code_used: { message: 'error.codeInvalid', retry: true, abort: 'failed' },
  refresh_token_invalid: { message: 'error.generic', retry: true, abort: 'failed' },
  token_invalid: { message: 'error.generic', retry: true, abort: 'failed' },
  scope_insufficient: { message: 'error.generic', retry: true, abort: 'failed' },
  unionid_missing: { message: 'error.unionidMissing', retry: false, abort: 'failed' },
  blocked: { message: 'error.blocked', retry: false, abort: 'failed' },
  rate_limited: { message: 'error.rateLimited', retry: true, abort: 'unavailable' },
  app_config: { message: 'error.appConfig', retry: false, abort: 'failed' },
  signature_invalid: { message: 'error.generic', retry: true, abort: 'failed' },
  unavailable: { message: 'error.unavailable', retry: true, abort: 'unavailable' },
  unexpected: { message: 'error.generic', retry: true, abort: 'failed' },
};

/**
 * A readable page for a login that stopped: the reason in the person's language, "try again"
 * (a fresh QR code for the same interaction) where it can help, and "return to the application",
 * which finishes the interaction with the matching OAuth error.
 */
export function renderFailure(
  ctx: Context,
  deps: InteractionDeps,
  interaction: Interaction,
  failure: Failure,
  status = 400,
): void {
  const uid = interaction.uid;
  // In the language the client asked for (ui_locales), as the login page before it was.
  const page = pageContext(ctx, uiLocales(interaction));
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = deps.views.render('error', page, {
    heading: page.t('error.title'),
    message: page.t(failure.message),
    retryUrl: failure.retry ? `/interaction/${uid}` : undefined,
    abortUrl: `/interaction/${uid}/abort`,
    abortReason: failure.abort,
    // A reference is for reporting a fault: a person who declined, or scanned with another
    // WeChat, made a choice, and a reference would make it look like one.
    requestId: PERSONS_CHOICE.has(failure.abort) ? undefined : ctx.state.requestId,
  });
}

const PERSONS_CHOICE: ReadonlySet<AbortReason> = new Set(['cancelled', 'declined', 'otherPerson']);
