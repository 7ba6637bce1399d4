import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import type { Scoped } from '../http/scoped.ts';
import { interactionPath } from '../oidc/provider.ts';
import type { InteractionDeps } from './deps.ts';
import { rememberRestart } from './restart.ts';
import { showLogin } from './show.ts';

/**
 * The login step answered by the authorization request itself, as Keycloak's login form is: where
 * oidc-provider would send the browser on to the interaction it just started (303 to
 * /interaction/:uid), the QR page is the answer (or, inside WeChat, the redirect to the Official
 * Account's authorization that page would have made). The interaction is the one in hand, just
 * saved, so nothing is read back; the browser saves a round trip before it can scan (and the
 * server a request: bench/README.md). Its cookies are set as for the redirect, so the WeChat
 * callback, the consent page and cancel find it at /interaction/:uid as before, where the page's
 * own links (language, cancel) also lead. A reload asks the authorization endpoint again and
 * starts a fresh interaction; the abandoned one expires unused. Only GET (and HEAD, its headers:
 * RFC 9110 9.3.2) is answered so: a request
 * a relying party POSTs arrives as the GET it was redirected to (src/http/posted-requests.ts), and
 * a page answering a POST would ask to resubmit it on reload.
 */
export function loginAtAuthorization(deps: InteractionDeps, authorizationPath: string): Scoped {
  const applies = (ctx: Context, path: string) =>
    path === authorizationPath && (ctx.method === 'GET' || ctx.method === 'HEAD');
  return {
    applies,
    middleware: (ctx, next) =>
      applies(ctx, ctx.path) ? next().then(() => answerWithLogin(ctx, deps, authorizationPath)) : next(),
  };
}

async function answerWithLogin(
  ctx: Context,
  deps: InteractionDeps,
  authorizationPath: string,
): Promise<void> {
  const interaction = startedLogin(ctx);
  if (!interaction) return;
  ctx.remove('Location');
  ctx.status = 200;
  // Should the person come back after the login timed out, its page offers to start it again.
  rememberRestart(ctx, interaction, authorizationPath);
  await showLogin(ctx, deps, interaction);
}

/** The login interaction this answer redirects to, just started by oidc-provider; else undefined. */
function startedLogin(ctx: Context): Interaction | undefined {
  if (ctx.status !== 303) return undefined;
  const oidc = (ctx as Context & { oidc?: { entities: { Interaction?: Interaction } } }).oidc;
  const interaction = oidc?.entities.Interaction;
  if (interaction?.prompt.name !== 'login') return undefined;
  return ctx.response.get('Location') === interactionPath(interaction.uid) ? interaction : undefined;
}
