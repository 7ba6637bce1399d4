import { SandboxInputError } from './input-error.ts';
import type { LoginRequest } from './login-request.ts';
import { NO_USER_CHOSEN } from './pages.ts';
import { appendQuery } from './redirect-uri.ts';
import type { SandboxState } from './state.ts';
import type { SandboxUser } from './users.ts';

/** What the person did on the page (or the phone): a user id, or a nickname to create one. */
export interface LoginChoice {
  decision: string | undefined;
  userId: string | undefined;
  nickname: string | undefined;
}

export type LoginOutcome =
  | { kind: 'redirect'; location: string; code?: string }
  | { kind: 'declined' }
  | { kind: 'invalid'; message: string };

function chosenUser(state: SandboxState, choice: LoginChoice): SandboxUser | string {
  if (choice.nickname?.trim()) {
    try {
      return state.createUser({ nickname: choice.nickname });
    } catch (error) {
      if (error instanceof SandboxInputError) return error.message;
      throw error;
    }
  }
  const user = choice.userId === undefined ? undefined : state.getUser(choice.userId);
  return user ?? NO_USER_CHOSEN;
}

/**
 * Allow: a code for (app, user, scope) and a redirect with code and state.
 * Deny: per the sandbox's denyMode, a redirect with state only or no redirect at all (§2).
 */
export function decideLogin(state: SandboxState, request: LoginRequest, choice: LoginChoice): LoginOutcome {
  if (choice.decision === 'deny') {
    if (state.denyMode === 'no_redirect') return { kind: 'declined' };
    return { kind: 'redirect', location: appendQuery(request.redirectUri, { state: request.state }) };
  }
  if (choice.decision !== 'allow') return { kind: 'invalid', message: 'decision must be allow or deny' };
  const user = chosenUser(state, choice);
  if (typeof user === 'string') return { kind: 'invalid', message: user };
  const code = state.issueCode({ appid: request.app.appid, userId: user.id, scope: request.scope });
  return {
    kind: 'redirect',
    location: appendQuery(request.redirectUri, { code, state: request.state }),
    code,
  };
}
