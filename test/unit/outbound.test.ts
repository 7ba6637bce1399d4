import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/config/secret.ts';
import { outboundDispatcher } from '../../src/http/outbound.ts';
import { createWeChatClient } from '../../src/upstream/wechat/client.ts';

// A stand-in for api.weixin.qq.com on loopback: every call answers a code exchange's success.
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(
      '{"access_token":"AT","expires_in":7200,"refresh_token":"RT","openid":"oOPENID","scope":"snsapi_login"}',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('outbound requests', () => {
  it("go through the bridge's own connection pools even after Node's fetch installed its dispatcher", async () => {
    // Node's fetch makes its bundled undici the process's global dispatcher, which undici's
    // request() would otherwise use for every WeChat call.
    await (await fetch(`${base}/warm-up`)).text();
    const client = createWeChatClient({ apiBaseUrl: base, timeoutMs: 2_000 });
    const app = { kind: 'website' as const, appid: 'wx0123456789abcdef', name: 'T', secret: new Secret('s') };

    const token = await client.exchangeCode(app, 'CODE');

    expect(token.openid).toBe('oOPENID');
    const pools = (outboundDispatcher() as Agent).stats;
    expect(pools[base]?.connected).toBe(1);
  });
});
