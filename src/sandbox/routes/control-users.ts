import { bodyParser } from '@koa/bodyparser';
import type Router from '@koa/router';
import { z } from 'zod';
import type { SandboxState } from '../state.ts';
import { selfOrigin } from '../wire.ts';
import { sendJson, withInput } from './json.ts';

const newUserSchema = z.strictObject({
  nickname: z.string(),
  /** '#rrggbb', or null for no avatar. */
  avatarColor: z.string().nullable().optional(),
  language: z.string().max(16).optional(),
  /** On WeChat's snapshot page: Official Account userinfo authorizations give a virtual account. */
  snapshot: z.boolean().optional(),
  /** Let the nickname hold control characters (NUL, BEL...), as WeChat's "any UTF-8" allows. */
  allowControlCharacters: z.boolean().optional(),
});

const userPatchSchema = z.strictObject({
  nickname: z.string().optional(),
  /** A new avatar in this colour, or null to remove it. */
  avatarColor: z.string().nullable().optional(),
  /** A new avatar (and URL) in another colour. */
  newAvatar: z.boolean().optional(),
  snapshot: z.boolean().optional(),
});

/** The developer's and tests' control over the fake people (JSON, plus a form post from /sandbox). */
export function registerControlUsers(router: Router, state: SandboxState): void {
  router.get('/sandbox/users', (ctx) => {
    sendJson(ctx, 200, { users: state.listUsers().map((user) => state.summary(user, selfOrigin(ctx))) });
  });

  router.post('/sandbox/users', bodyParser({ enableTypes: ['json', 'form'] }), (ctx) => {
    const fromForm = typeof ctx.is('urlencoded') === 'string';
    if (fromForm) {
      const body = (ctx.request.body ?? {}) as Record<string, unknown>;
      // HTML forms send every field as a string; an empty colour means "pick one"
      ctx.request.body = { nickname: body.nickname, avatarColor: body.avatarColor || undefined };
    }
    withInput(ctx, newUserSchema, (input) => {
      const user = state.createUser(input);
      if (fromForm) {
        ctx.redirect('/sandbox');
        ctx.status = 303;
        return;
      }
      sendJson(ctx, 201, state.summary(user, selfOrigin(ctx)));
    });
  });

  router.get('/sandbox/users/:id', (ctx) => {
    const user = state.getUser(ctx.params.id!);
    if (!user) sendJson(ctx, 404, { error: 'no such user' });
    else sendJson(ctx, 200, state.summary(user, selfOrigin(ctx)));
  });

  router.patch('/sandbox/users/:id', bodyParser({ enableTypes: ['json'] }), (ctx) => {
    withInput(ctx, userPatchSchema, (patch) => {
      const user = state.updateUser(ctx.params.id!, patch);
      if (!user) sendJson(ctx, 404, { error: 'no such user' });
      else sendJson(ctx, 200, state.summary(user, selfOrigin(ctx)));
    });
  });
}
