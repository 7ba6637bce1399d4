import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Fault } from './faults.ts';
import type { SandboxState } from './state.ts';
import { errorBody, sendWeChatJson, type WeChatBody } from './wire.ts';

export type ApiHandler = (ctx: Context, state: SandboxState) => WeChatBody | Promise<WeChatBody>;

/** What an injected gateway error looks like: an HTML page, not JSON. */
function sendGatewayError(ctx: Context, status: number): void {
  ctx.status = status;
  ctx.set('Content-Type', 'text/html');
  ctx.body = `<html>\r\n<head><title>${status}</title></head>\r\n<body>\r\n<center><h1>${status}</h1></center>\r\n</body>\r\n</html>\r\n`;
}

function sendFault(ctx: Context, fault: Fault, state: SandboxState): boolean {
  if (fault.httpStatus !== undefined) {
    sendGatewayError(ctx, fault.httpStatus);
    return true;
  }
  if (fault.emptyBody) {
    // 2017's /cgi-bin/token with a bad secret: HTTP 200, nothing, a GBK HTML type (§1.4)
    ctx.status = 200;
    ctx.body = '';
    ctx.set('Content-Type', 'text/html; charset=gbk');
    return true;
  }
  if (fault.errcode !== undefined) {
    sendWeChatJson(ctx, errorBody(fault.errcode, fault.errmsg), state.contentType);
    return true;
  }
  return false;
}

/**
 * Registers one api.weixin.qq.com endpoint (GET, as WeChat's /sns/* are, or POST with a JSON body,
 * as cgi-bin/stable_token and wxa/business/* are). Every endpoint goes through here so faults,
 * content type and escaping are the same for all.
 */
export function defineApi(
  router: Router,
  state: SandboxState,
  api: string,
  handler: ApiHandler,
  method: 'GET' | 'POST' = 'GET',
): void {
  state.faults.registerApi(api);
  const register = method === 'POST' ? router.post.bind(router) : router.get.bind(router);
  register(`/${api}`, async (ctx) => {
    if (method === 'POST' && !(await readJsonBody(ctx))) {
      sendWeChatJson(ctx, errorBody(47001), state.contentType);
      return;
    }
    const fault = state.faults.take(api);
    if (fault?.delayMs !== undefined) await state.faults.hold(fault.delayMs);
    if (fault && !fault.afterProcessing && sendFault(ctx, fault, state)) return;
    const body = await handler(ctx, state);
    if (fault?.afterProcessing && sendFault(ctx, fault, state)) return;
    sendWeChatJson(ctx, body, state.contentType);
  });
}

/**
 * WeChat reads a POST body as JSON whatever its Content-Type. Puts the object on ctx.request.body;
 * false for anything else (WeChat's 47001 "data format error").
 */
async function readJsonBody(ctx: Context): Promise<boolean> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
  try {
    const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
    ctx.request.body = body;
    return true;
  } catch {
    return false;
  }
}
