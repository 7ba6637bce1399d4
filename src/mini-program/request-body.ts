import type { Context } from 'koa';
import type { z } from 'zod';
import { MiniProgramError } from './errors.ts';

/** The JSON body, checked against the schema; a precise invalid_request naming the field otherwise. */
export function readBody<T>(ctx: Context, schema: z.ZodType<T>): T {
  const body: unknown = ctx.request.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !ctx.is('json')) {
    throw new MiniProgramError(
      400,
      'invalid_request',
      'send a JSON object with Content-Type: application/json',
    );
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || undefined;
  throw new MiniProgramError(
    400,
    'invalid_request',
    `${field ?? 'body'}: ${issue?.message ?? 'invalid'}`,
    field === undefined ? {} : { field },
  );
}
