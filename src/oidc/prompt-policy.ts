import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

const { Check, Prompt, base } = interactionPolicy;

/** prompt=select_account (OpenID Connect Core 3.1.2.1). */
export const SELECT_ACCOUNT = 'select_account';

/**
 * oidc-provider's prompts (login, then consent), with two checks of ours on the login:
 *
 * - A session whose account is gone (folded into another by a phone recovery, deleted meanwhile)
 *   is no login. oidc-provider finds no account and so no grant for it, and its consent prompt then
 *   failed on the missing grant: a 500 at every authorization request of that browser. It gets the
 *   login page now, or login_required for prompt=none.
 * - `select_account` as WeChat can offer it. Without it, oidc-provider refuses the value as
 *   unsupported (invalid_request), and relying parties send it for a "use another account" button.
 *   With WeChat the account is chosen by scanning: the person scans with the WeChat they mean (or,
 *   inside WeChat, is who that WeChat is), so the request gets the login page even in a browser
 *   with a session, and whoever logs in there becomes the session's person. The interaction stays
 *   a login, and the login's result answers the prompt too (`SELECT_ACCOUNT` in it,
 *   complete-login.ts); the prompt itself is here so that the value is accepted.
 */
export function promptPolicy(): ReturnType<typeof base> {
  // Checks added to a prompt get no error of their own (its constructor gives its own checks one):
  // prompt=none answers with the login prompt's, login_required.
  const policy = base();
  const login = policy.get('login');
  login?.checks.add(
    new Check(
      'account_gone',
      "the session's account no longer exists",
      'login_required',
      (ctx: KoaContextWithOIDC) =>
        ctx.oidc.session?.accountId && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT,
    ),
  );
  login?.checks.add(
    new Check(
      'select_account',
      'the client asked the person to choose an account',
      (ctx: KoaContextWithOIDC) =>
        ctx.oidc.prompts.has(SELECT_ACCOUNT) && !ctx.oidc.result?.login
          ? Check.REQUEST_PROMPT
          : Check.NO_NEED_TO_PROMPT,
    ),
  );
  policy.add(new Prompt({ name: SELECT_ACCOUNT, requestable: true }));
  return policy;
}

/** Whether the authorization request asked the person to choose an account. */
export function selectsAccount(params: { prompt?: unknown }): boolean {
  return typeof params.prompt === 'string' && params.prompt.split(' ').includes(SELECT_ACCOUNT);
}
