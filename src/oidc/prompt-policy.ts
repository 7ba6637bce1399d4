import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

const { Check, Prompt, base } = interactionPolicy;

/** prompt=select_account (OpenID Connect Core 3.1.2.1). */
export const SELECT_ACCOUNT = 'select_account';

/**
 * oidc-provider's prompts (login, then consent) with `select_account` as WeChat can offer it. Without
 * it, oidc-provider refuses the value as unsupported (invalid_request), and relying parties send it
 * for a "use another account" button. With WeChat the account is chosen by scanning: the person
 * scans with the WeChat they mean (or, inside WeChat, is who that WeChat is), so the request gets
 * the login page even in a browser with a session, and whoever logs in there becomes the session's
 * person. The interaction stays a login (a check of the login prompt asks for it), and the login's
 * result answers the prompt too (`SELECT_ACCOUNT` in it, complete-login.ts); the prompt itself is
 * here so that the value is accepted and discovery's prompt_values_supported names it.
 */
export function promptPolicy(): ReturnType<typeof base> {
  const policy = base();
  policy
    .get('login')
    ?.checks.add(
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
