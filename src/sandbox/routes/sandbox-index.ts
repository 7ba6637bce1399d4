import type Router from '@koa/router';
import type { SandboxState } from '../state.ts';
import { textsFor } from '../texts.ts';
import { renderPage } from '../views.ts';
import { selfOrigin } from '../wire.ts';

/** GET /sandbox: what a developer needs to try the emulator by hand (never a secret). */
export function registerSandboxIndex(router: Router, state: SandboxState): void {
  router.get(['/sandbox', '/sandbox/'], (ctx) => {
    const apps = state.apps().map((app) => ({
      appid: app.appid,
      name: app.name ?? '',
      kind: app.kind,
      bound: state.isBound(app),
      callbackDomains: app.callbackDomains?.join(', ') ?? '*',
    }));
    renderPage(ctx, 'index', {
      t: textsFor('en'),
      title: 'WeChat sandbox',
      bodyClass: 'full',
      origin: selfOrigin(ctx),
      apps,
      websiteApps: apps.filter((app) => app.kind === 'website'),
      officialAccountApps: apps.filter((app) => app.kind === 'official_account'),
      deliverTwice: state.deliveries.enabled,
      users: state.listUsers().map((user) => ({
        ...state.summary(user, selfOrigin(ctx)),
        smallAvatarUrl: state.avatarUrl(user, selfOrigin(ctx), 64),
      })),
      denyMode: state.denyMode,
      contentType: state.contentType,
      apis: state.faults.knownApis(),
    });
  });
}
