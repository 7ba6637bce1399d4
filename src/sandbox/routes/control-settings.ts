import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import { z } from 'zod';
import { SandboxInputError } from '../input-error.ts';
import type { SandboxState } from '../state.ts';
import { sendJson, withInput } from './json.ts';

const settingsPatchSchema = z.strictObject({
  /** Deliver every callback with a code twice (the second copy without cookies, as WeChat's servers do). */
  deliverTwice: z.boolean().optional(),
  /**
   * appid -> whether the app is bound to the Open Platform account from now on (unbound: its answers
   * carry no unionid, §12). Apps left out keep their binding; an unknown appid is refused.
   */
  boundToOpenPlatform: z.record(z.string(), z.boolean()).optional(),
});

function settings(state: SandboxState) {
  return {
    deliverTwice: state.deliveries.enabled,
    denyMode: state.denyMode,
    contentType: state.contentType,
    boundToOpenPlatform: Object.fromEntries(state.apps().map((app) => [app.appid, state.isBound(app)])),
  };
}

/**
 * Run-time switches (the deliver-twice mode, each app's Open Platform binding) and what the
 * duplicate deliveries got back.
 */
export function registerControlSettings(router: Router, state: SandboxState): void {
  router.get('/sandbox/settings', (ctx) => sendJson(ctx, 200, settings(state)));

  router.patch('/sandbox/settings', bodyParser({ enableTypes: ['json'] }), (ctx) => {
    withInput(ctx, settingsPatchSchema, (patch) => {
      const binding = Object.entries(patch.boundToOpenPlatform ?? {});
      const unknown = binding.filter(([appid]) => !state.app(appid)).map(([appid]) => appid);
      // Nothing changes when any appid is unknown: a half-applied patch would surprise the caller.
      if (unknown.length > 0) throw new SandboxInputError(`unknown appid ${unknown.join(', ')}`);
      for (const [appid, bound] of binding) state.setBound(appid, bound);
      if (patch.deliverTwice !== undefined) state.deliveries.enabled = patch.deliverTwice;
      sendJson(ctx, 200, settings(state));
    });
  });

  // Waits for copies still in flight, so a caller sees every delivery made before it asked.
  router.get('/sandbox/deliveries', async (ctx) => {
    await state.deliveries.settled();
    sendJson(ctx, 200, { deliveries: state.deliveries.list() });
  });

  router.delete('/sandbox/deliveries', (ctx) => {
    state.deliveries.clear();
    ctx.status = 204;
  });
}
