import type { Context } from 'koa';
import { errmsgFor } from './errcodes.ts';
import { randomRid } from './ids.ts';
import type { SandboxContentType } from './types.ts';

/** A JSON object as an api.weixin.qq.com endpoint answers it. */
export type WeChatBody = Record<string, unknown>;

/** `{"errcode":N,"errmsg":"<text>, rid: xxxxxxxx-xxxxxxxx-xxxxxxxx"}` (§1.6). */
export function errorBody(errcode: number, errmsg: string = errmsgFor(errcode)): WeChatBody {
  return { errcode, errmsg: `${errmsg}, rid: ${randomRid()}` };
}

/**
 * WeChat's JSON: `/` escaped as `\/`, Chinese and emoji as raw UTF-8 (§1.5).
 * A `/` can only occur inside JSON strings, so escaping every one is safe.
 */
export function serializeWeChatJson(body: WeChatBody): string {
  return JSON.stringify(body).replaceAll('/', '\\/');
}

const CONTENT_TYPE_HEADER: Record<SandboxContentType, string> = {
  'text/plain': 'text/plain',
  'application/json': 'application/json; charset=utf-8',
};

/** Always HTTP 200, whatever the errcode (§1.2). */
export function sendWeChatJson(ctx: Context, body: WeChatBody, contentType: SandboxContentType): void {
  ctx.status = 200;
  ctx.body = serializeWeChatJson(body);
  // set after the body: koa would otherwise pick its own type with a charset
  ctx.set('Content-Type', CONTENT_TYPE_HEADER[contentType]);
}

/** A query parameter, first value when repeated; empty counts as missing, as WeChat treats it. */
export function queryParam(ctx: Context, name: string): string | undefined {
  const raw = ctx.query[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined || value === '' ? undefined : value;
}

/** The origin this request reached (koa 3's ctx.origin is the Origin header): links point back here. */
export function selfOrigin(ctx: Context): string {
  return `${ctx.protocol}://${ctx.host}`;
}
