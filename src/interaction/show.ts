import type { Context } from 'koa';
import type { Interaction } from 'oidc-provider';
import { findAccountBySubject } from '../accounts/repository.ts';
import { pageContext } from '../http/views.ts';
import { isMessageKey, type Translate } from '../i18n/messages.ts';
import { isFirstParty } from '../oidc/grants.ts';
import { confirmConsent } from './consent.ts';
import type { InteractionDeps } from './deps.ts';
import { clientName, loadInteraction } from './load.ts';
import { issueState } from './wechat-state.ts';

/** GET /interaction/:uid — the page for whatever oidc-provider prompts for: login or consent. */
export async function showInteraction(ctx: Context, deps: InteractionDeps): Promise<void> {
  const interaction = await loadInteraction(ctx, deps);
  if (!interaction) return;
  if (interaction.prompt.name === 'login') return showLogin(ctx, deps, interaction);
  if (interaction.prompt.name === 'consent') {
    const client = await deps.provider.Client.find(String(interaction.params.client_id));
    // First-party clients normally never get here (loadExistingGrant grants for them), except when
    // the request itself demands prompt=consent; they still skip the page.
    if (isFirstParty(client)) return confirmConsent(ctx, deps, interaction);
    return showConsent(ctx, deps, interaction);
  }
  throw new Error(`unsupported prompt ${interaction.prompt.name}`);
}

async function showLogin(ctx: Context, deps: InteractionDeps, interaction: Interaction): Promise<void> {
  const page = pageContext(ctx, uiLocales(interaction));
  const connector = deps.connectors.website;
  let qr: { embedUrl: string; authorizeUrl: string } | undefined;
  if (connector) {
    const ttl = interaction.exp - Math.floor(deps.now().getTime() / 1000);
    const state = await issueState(
      deps.kv,
      { uid: interaction.uid, kind: 'website', appid: connector.app.appid },
      ttl,
    );
    const redirectUri = `${deps.issuer}/interaction/${interaction.uid}/wechat-callback`;
    const lang = page.lang === 'en' ? 'en' : 'cn';
    qr = {
      embedUrl: connector.embedUrl({ redirectUri, state, lang }),
      authorizeUrl: connector.authorizeUrl({ redirectUri, state, lang }),
    };
  }
  ctx.type = 'html';
  ctx.body = deps.views.render('login', page, {
    qr,
    clientName: await clientName(deps, interaction),
    abortUrl: `/interaction/${interaction.uid}/abort`,
  });
}

async function showConsent(ctx: Context, deps: InteractionDeps, interaction: Interaction): Promise<void> {
  const page = pageContext(ctx, uiLocales(interaction));
  const accountId = interaction.session?.accountId;
  const account = accountId ? await findAccountBySubject(deps.db, accountId) : undefined;
  const scopes = String(interaction.params.scope ?? 'openid')
    .split(' ')
    .filter(Boolean)
    .map((scope) => ({ scope, label: scopeLabel(page.t, scope) }));
  ctx.type = 'html';
  ctx.body = deps.views.render('consent', page, {
    clientName: await clientName(deps, interaction),
    accountName: account?.nickname ?? undefined,
    scopes,
    confirmUrl: `/interaction/${interaction.uid}/consent`,
    abortUrl: `/interaction/${interaction.uid}/abort`,
  });
}

function scopeLabel(t: Translate, scope: string): string {
  const key = `scope.${scope}`;
  return isMessageKey(key) ? t(key) : scope;
}

function uiLocales(interaction: Interaction): string | undefined {
  const value = interaction.params.ui_locales;
  return typeof value === 'string' ? value : undefined;
}
