import { randomBytes } from 'node:crypto';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { ClientConfig } from '../config/types.ts';
import { addressedToAnotherHost } from '../http/issuer-origin.ts';
import { pageContext, type Views } from '../http/views.ts';
import type { MessageKey } from '../i18n/messages.ts';

const COOKIE = 'demo_rp';

/**
 * A tiny relying party at /demo, registered only in development, so a newcomer can log in end to
 * end and see the ID token's claims. It is an ordinary OIDC client: openid-client, discovery, code
 * + PKCE, and its login state in its own signed cookie (never in server memory).
 * openid-client is a development dependency, loaded only when the demo is enabled.
 */
export async function createDemo(
  issuer: string,
  views: Views,
): Promise<{ client: ClientConfig; router: Router }> {
  const oidc = await import('openid-client');
  const client: ClientConfig = {
    client_id: 'demo',
    client_secret: randomBytes(24).toString('base64url'),
    client_name: 'Demo app',
    redirect_uris: [`${issuer}/demo/callback`],
    post_logout_redirect_uris: [`${issuer}/demo`],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  };
  let discovered: Promise<import('openid-client').Configuration> | undefined;
  // Discovery waits for the first visit: the server is not listening while routes are built.
  const configuration = () => {
    discovered ??= oidc
      .discovery(new URL(issuer), client.client_id, client.client_secret as string, undefined, {
        execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
      })
      .catch((error) => {
        discovered = undefined;
        throw error;
      });
    return discovered;
  };

  const router = new Router();
  router.get('/demo', (ctx) => {
    // Its login state is a cookie of the host it is set on, and the login comes back to the issuer's
    // (the redirect_uri): opened as http://127.0.0.1:3000/demo while the issuer says localhost, the
    // demo would find no login in progress at the callback. It moves to the issuer's host first.
    if (addressedToAnotherHost(ctx)) return ctx.redirect(`${issuer}/demo`);
    render(ctx, views, {});
  });
  router.get('/demo/login', async (ctx) => {
    const config = await configuration();
    const verifier = oidc.randomPKCECodeVerifier();
    // The demo's language goes with the login (ui_locales) and comes back to its own page.
    const { lang } = pageContext(ctx);
    const checks = { verifier, state: oidc.randomState(), nonce: oidc.randomNonce(), lang };
    ctx.cookies.set(COOKIE, JSON.stringify(checks), {
      signed: true,
      httpOnly: true,
      sameSite: 'lax',
      maxAge: 15 * 60_000,
    });
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: client.redirect_uris?.[0] as string,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: checks.state,
      nonce: checks.nonce,
      ui_locales: lang,
    });
    ctx.redirect(url.href);
  });
  router.get('/demo/callback', async (ctx) => {
    const config = await configuration();
    const raw = ctx.cookies.get(COOKIE, { signed: true });
    ctx.cookies.set(COOKIE, null);
    if (!raw) return render(ctx, views, { problem: 'demo.noLogin' });
    const checks = JSON.parse(raw) as { verifier: string; state: string; nonce: string; lang?: string };
    try {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(ctx.href), {
        pkceCodeVerifier: checks.verifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
      });
      const claims = tokens.claims();
      if (!claims) throw new Error('no ID token');
      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
      const logoutUrl = oidc.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: `${issuer}/demo`,
      }).href;
      const shown = {
        claims: JSON.stringify(claims, null, 2),
        userinfo: JSON.stringify(userinfo, null, 2),
        logoutUrl,
      };
      render(ctx, views, shown, checks.lang);
    } catch (error) {
      // The person's words first; the OAuth error beneath, as a relying party's developer wants it.
      const e = error as { error?: string; error_description?: string; message?: string };
      const problem = e.error === 'access_denied' ? 'demo.cancelled' : 'demo.failed';
      const errorCode = e.error ? `${e.error}: ${e.error_description ?? ''}` : String(e.message);
      render(ctx, views, { problem, errorCode }, checks.lang);
    }
  });
  return { client, router };
}

/** The demo's page; at the callback (whose URL names no language), in the one the login began in. */
function render(
  ctx: Context,
  views: Views,
  data: Record<string, unknown> & { problem?: MessageKey },
  lang?: string,
): void {
  const page = pageContext(ctx, lang);
  const { problem, ...rest } = data;
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  ctx.body = views.render('demo', page, { ...rest, ...(problem && { error: page.t(problem) }) });
}
