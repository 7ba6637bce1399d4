import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';
import { registerAvatars } from './routes/avatars.ts';
import { registerControlFaults } from './routes/control-faults.ts';
import { registerControlMiniProgram } from './routes/control-mini-program.ts';
import { registerControlSettings } from './routes/control-settings.ts';
import { registerControlUsers } from './routes/control-users.ts';
import { registerMiniProgramApi } from './routes/mini-program-api.ts';
import { registerOAuth2Authorize } from './routes/oauth2-authorize.ts';
import { registerQrScan } from './routes/qr-scan.ts';
import { registerQrConnect } from './routes/qrconnect.ts';
import { registerSandboxIndex } from './routes/sandbox-index.ts';
import { registerSnsOAuth2 } from './routes/sns-oauth2.ts';
import { registerSnsUser } from './routes/sns-user.ts';
import { SandboxState } from './state.ts';
import type { ListeningSandbox, Sandbox, SandboxOptions } from './types.ts';

/** Each endpoint group is one module; a new WeChat surface is one more line here. */
const ROUTE_GROUPS = [
  registerQrConnect,
  registerQrScan,
  registerOAuth2Authorize,
  registerSnsOAuth2,
  registerSnsUser,
  registerMiniProgramApi,
  registerAvatars,
  registerControlUsers,
  registerControlFaults,
  registerControlMiniProgram,
  registerControlSettings,
  registerSandboxIndex,
];

async function handleErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next();
  } catch (error) {
    const status = (error as { status?: number }).status ?? 500;
    ctx.status = status;
    ctx.type = 'text/plain; charset=utf-8';
    // 4xx come from parsing the request (a malformed JSON body): the message helps the developer
    ctx.body = status < 500 ? (error as Error).message : 'sandbox error';
    if (status >= 500) ctx.app.emit('error', error, ctx);
  }
}

/** A URL a local browser can open: a wildcard bind is reached through loopback. */
function urlOf(address: AddressInfo): string {
  const ip = address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '::1' : address.address;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return `http://${host}:${address.port}`;
}

/** The WeChat emulator: both hosts' paths on one koa app, all state in memory. */
export function createSandbox(options: SandboxOptions): Sandbox {
  const state = new SandboxState(options);
  const app = new Koa();
  const router = new Router();
  for (const register of ROUTE_GROUPS) register(router, state);
  app.use(handleErrors);
  app.use(router.routes());
  app.use(router.allowedMethods());

  async function listen(port = 0, host = '127.0.0.1'): Promise<ListeningSandbox> {
    const server = createServer(app.callback());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return {
      url: urlOf(server.address() as AddressInfo),
      server,
      close: async () => {
        // let requests held by delay faults finish, then drop idle keep-alive connections
        state.faults.clear();
        await state.deliveries.settled();
        const closed = new Promise<void>((resolve, reject) =>
          server.close((error) => (error ? reject(error) : resolve())),
        );
        server.closeIdleConnections();
        await closed;
      },
    };
  }

  return { app, state, listen };
}
