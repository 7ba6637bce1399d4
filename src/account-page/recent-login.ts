import type { PageSession } from './session.ts';

/**
 * How recent the session's login must be for the account page's destructive actions: long enough
 * to act after logging in, short enough that a browser left logged in (a shared computer, where the
 * session lasts oidc.ttl.session, 14 days) is not enough to unbind a WeChat or delete the account.
 * Ten minutes, as GitHub's sudo mode asks again after a while.
 */
export const RECENT_LOGIN_DEFAULT_SECONDS = 600;

/** The actions that ask for a recent login; each names where the browser returns after logging in again. */
export type StepUpPurpose = 'unbind' | 'delete';

/**
 * Fixed destinations: the login cookie carries a purpose, never a URL, so nothing a request says can
 * send the browser elsewhere. Unbinding returns to the account page (the person picks the app
 * again), deletion to its confirmation page. Neither repeats a POST: the person does, with a fresh
 * form token.
 */
const RETURN_PATHS: Record<StepUpPurpose, string> = {
  unbind: '/account',
  delete: '/account/delete',
};

export function isStepUpPurpose(value: unknown): value is StepUpPurpose {
  return typeof value === 'string' && Object.hasOwn(RETURN_PATHS, value);
}

/** Where the account page's login returns to: the purpose's page, or the account page for anything else. */
export function returnPath(purpose: unknown): string {
  return isStepUpPurpose(purpose) ? RETURN_PATHS[purpose] : '/account';
}

/**
 * Whether the session's login (oidc-provider's loginTs, its auth_time, in epoch seconds) is within
 * `windowSeconds` of `now`. A session without one counts as old. A login a little in the future (an
 * instance whose clock runs behind another's) counts as recent.
 */
export function loggedInRecently(session: PageSession, now: Date, windowSeconds: number): boolean {
  if (session.loginTs === undefined) return false;
  return Math.floor(now.getTime() / 1000) - session.loginTs <= windowSeconds;
}

/**
 * The authorization request's parameters that make the provider authenticate again even though the
 * session is logged in (OIDC Core 3.1.2.1): prompt=login, and max_age=0 for a provider that would
 * treat prompt as a hint. The person scans with WeChat again.
 */
export const LOG_IN_AGAIN = { prompt: 'login', max_age: '0' } as const;
