import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import { z } from 'zod';
import type { SandboxState } from '../state.ts';
import { sendJson, withInput } from './json.ts';

const settingsPatchSchema = z.strictObject({
  /** Deliver every callback with a code twice (the second copy without cookies, as WeChat's servers do). */
  deliverTwice: z.boolean().optional(),
});

function settings(state: SandboxState) {
  return {
    deliverTwice: state.deliveries.enabled,
    denyMode: state.denyMode,
    contentType: state.contentType,
  };
}

/** Run-time switches (the deliver-twice mode) and what the duplicate deliveries got back. */
export function registerControlSettings(router: Router, state: SandboxState): void {
  router.get('/sandbox/settings', (ctx) => sendJson(ctx, 200, settings(state)));

  router.patch('/sandbox/settings', bodyParser({ enableTypes: ['json'] }), (ctx) => {
    withInput(ctx, settingsPatchSchema, (patch) => {
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
