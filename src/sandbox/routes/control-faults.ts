import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import type { FaultSpec } from '../faults.ts';
import type { SandboxState } from '../state.ts';
import { orBadRequest, sendJson } from './json.ts';

/** Inject failures on an API for its next calls; DELETE clears them and releases held requests. */
export function registerControlFaults(router: Router, state: SandboxState): void {
  router.get('/sandbox/faults', (ctx) => {
    sendJson(ctx, 200, {
      faults: state.faults.list(),
      pendingDelays: state.faults.pendingDelays,
      knownApis: state.faults.knownApis(),
    });
  });

  router.post('/sandbox/faults', bodyParser({ enableTypes: ['json'] }), (ctx) => {
    // the queue validates the spec (SandboxInputError -> 400)
    orBadRequest(ctx, () => sendJson(ctx, 201, state.injectFault(ctx.request.body as FaultSpec)));
  });

  router.delete('/sandbox/faults', (ctx) => {
    state.clearFaults();
    ctx.status = 204;
  });
}
