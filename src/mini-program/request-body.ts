import type { Context } from 'koa';
import { z } from 'zod';
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
  // A key the endpoint does not take is named first, as the field at fault: a misspelt field is
  // also reported missing, which would send the caller looking in the wrong place.
  const { issues } = parsed.error;
  const issue = issues.find((each) => each.code === 'unrecognized_keys') ?? issues[0];
  const unknown = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  const field = unknown ?? (issue?.path.join('.') || undefined);
  const message =
    unknown === undefined ? (issue?.message ?? 'invalid') : 'is not a field this endpoint takes';
  throw new MiniProgramError(
    400,
    'invalid_request',
    `${field ?? 'body'}: ${message}`,
    field === undefined ? {} : { field },
  );
}

/** A text field of a JSON body, its refusals said plainly ("encryptedData: missing"). */
export function textField(maxLength: number, minLength = 1) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? 'missing' : 'must be a string') })
    .min(minLength, 'must not be empty')
    .max(maxLength, `must be at most ${maxLength} characters`);
}

/**
 * What wx.* APIs answer beside the data (wx.getUserInfo's success result, a button's e.detail):
 * taken so that an answer can be sent as it came, and ignored. Any other key is refused, so that a
 * misspelt field is named rather than reported missing.
 */
export const WECHAT_ANSWER_EXTRAS = {
  errMsg: z.unknown().optional(),
  cloudID: z.unknown().optional(),
  userInfo: z.unknown().optional(),
};
