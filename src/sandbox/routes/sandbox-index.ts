import type Router from '@koa/router';
import type { Fault } from '../faults.ts';
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
      // What the next calls will meet, so that a developer sees why a login fails.
      faults: state.faults.list().map(describeFault),
      pendingDelays: state.faults.pendingDelays,
    });
  });
}

/** One queued fault in a line: its API, what it answers, and how many more calls it takes. */
function describeFault(fault: Fault): { api: string; outcome: string; times: number } {
  const answers = [
    fault.delayMs === undefined ? undefined : `after ${fault.delayMs} ms`,
    fault.errcode === undefined ? undefined : `errcode ${fault.errcode}`,
    fault.httpStatus === undefined ? undefined : `HTTP ${fault.httpStatus}`,
    fault.emptyBody ? 'an empty body' : undefined,
    fault.afterProcessing ? 'once the call is processed' : undefined,
  ];
  return { api: fault.api, outcome: answers.filter(Boolean).join(', '), times: fault.times };
}
