import type { Context } from 'koa';
import { z } from 'zod';
import { SandboxInputError } from '../input-error.ts';

/** The control API's JSON answers (ordinary JSON, unlike WeChat's wire). */
export function sendJson(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

/** Runs an action; a SandboxInputError it throws becomes a 400 with the reason. */
export function orBadRequest(ctx: Context, action: () => void): void {
  try {
    action();
  } catch (error) {
    if (!(error instanceof SandboxInputError)) throw error;
    sendJson(ctx, 400, { error: error.message });
  }
}

/** Parses the request body with the schema (400 when it does not fit), then runs the action. */
export function withInput<T>(ctx: Context, schema: z.ZodType<T>, action: (input: T) => void): void {
  const parsed = schema.safeParse(ctx.request.body ?? {});
  if (!parsed.success) {
    sendJson(ctx, 400, { error: z.prettifyError(parsed.error) });
    return;
  }
  orBadRequest(ctx, () => action(parsed.data));
}
