import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SECTION_DEFAULTS } from '../../src/config/defaults.ts';
import { type Bridge, logLines, startBridge } from '../helpers/bridge.ts';
import {
  consentAction,
  createSandboxUser,
  decideOnWeChat,
  relyingParty,
  startLogin,
} from '../helpers/flow.ts';
import { type LoadBalancer, startLoadBalancer } from './load-balancer.ts';

describe('graceful shutdown', () => {
  let wechatApi: LoadBalancer;
  let bridge: Bridge;

  beforeAll(async () => {
    // WeChat's API reached through a proxy the test can hold a call in.
    wechatApi = await startLoadBalancer();
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, wechat: { ...config.wechat, apiBaseUrl: wechatApi.url } }),
    });
    wechatApi.targets = [bridge.sandboxUrl];
  });
  afterAll(async () => {
    await bridge?.close();
    await wechatApi?.close();
  });

  test('a login in flight when shutdown starts completes, with its stores still open, and closes its connection; new connections are refused', async () => {
    const rp = await relyingParty(bridge);
    const panda = await createSandboxUser(bridge, '🐼 熊猫 Panda');
    const login = await startLogin(rp);

    let arrived: () => void = () => {};
    let release: () => void = () => {};
    const inExchange = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    wechatApi.before = (_method, path) => {
      if (!path.startsWith('/sns/oauth2/access_token')) return undefined;
      arrived();
      return released;
    };

    const callback = decideOnWeChat(login, { user: panda, allow: true });
    await inExchange;
    const closing = bridge.server.close();
    await expect(fetch(`${bridge.url}/healthz`)).rejects.toThrow();
    release();

    const answer = await callback;
    expect(answer.status).toBe(200);
    // Answered, and told that its keep-alive connection closes: the drain is not left waiting for it.
    expect(answer.headers.get('connection')).toBe('close');
    // Logged in: the consent page of the login's own interaction (test-rp is third-party).
    expect(consentAction(answer)).toBe(`${login.interactionUrl.replace(/\/$/, '')}/consent`);
    expect(bridge.logs.join('')).toContain('"msg":"wechat login"');
    await closing;
    // The last line says the instance has stopped and what its drain met: an operator could not
    // tell a clean exit from a hang when "shutting down" was the last (an operator's review).
    expect(JSON.parse(bridge.logs.at(-1) as string)).toMatchObject({
      level: 'info',
      msg: 'stopped: server and stores closed',
      inFlight: 1,
      drained: 1,
      cut: 0,
    });
  });
});

describe('shutdown delay', () => {
  test('after SIGTERM the instance goes on answering for the delay, /readyz at 503 on both ports and every connection closed after its answer; then it stops accepting', async () => {
    const bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({
        ...config,
        management: { port: 0, host: '127.0.0.1' },
        shutdown: { delay: 2, timeout: 10 },
      }),
    });
    const management = bridge.server.managementUrl as string;
    // A keep-alive connection opened before the shutdown, as a proxy's pool holds.
    const { port } = new URL(bridge.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    const ended = once(socket, 'end');
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await expect.poll(() => received).toContain('Connection: keep-alive');
    expect((await fetch(`${bridge.url}/readyz`)).status).toBe(200);

    let closed = false;
    const closing = bridge.server.close().then(() => {
      closed = true;
    });
    try {
      for (const base of [bridge.url, management]) {
        const ready = await fetch(`${base}/readyz`);
        expect(ready.status).toBe(503);
        expect(await ready.json()).toEqual({ status: 'stopping' });
      }
      // Still serving, on new connections too, each told to close.
      const discovery = await fetch(`${bridge.url}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(discovery.headers.get('connection')).toBe('close');
      // The pooled connection's next answer closes it.
      received = '';
      socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await ended;
      expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(received).toContain('Connection: close');
      expect(closed).toBe(false);
      expect(bridge.logs.join('')).toContain(
        'shutting down: /readyz answers 503 before the server stops accepting',
      );
      // The probe's 503 is its answer: its access line is debug, not a warning per poll.
      const probes = logLines(bridge, { text: '"path":"/readyz","status":503' });
      expect(probes.length).toBeGreaterThan(0);
      for (const line of probes) expect(JSON.parse(line).level).toBe('debug');
    } finally {
      await closing;
      socket.destroy();
    }
    await expect(fetch(`${bridge.url}/healthz`)).rejects.toThrow();
  });
});

describe('shutdown timeout', () => {
  test('a store that fails to close makes the last line a warning, not the clean stop', async () => {
    const failing = await startBridge({ storage: 'embedded' });
    const { stores } = failing.server;
    const close = stores.close.bind(stores);
    stores.close = async () => {
      await close();
      throw new Error('the store would not close');
    };
    await failing.server.close();
    const last = JSON.parse(failing.logs.at(-1) as string);
    expect(last).toMatchObject({
      level: 'warn',
      msg: 'stopped, though something failed to close (see the error above)',
    });
    expect(failing.logs.join('')).toContain('"msg":"error while closing"');
    await failing.close();
  });

  test('requests still in flight when it runs out are cut, and the log says how many', async () => {
    const bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, shutdown: { delay: 0, timeout: 1 } }),
    });
    // A token request whose body never finishes arriving: in flight until the cut.
    const socket = connect(Number(new URL(bridge.url).port), '127.0.0.1');
    await once(socket, 'connect');
    const ended = once(socket, 'close');
    socket.write(
      'POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
        'Content-Length: 100\r\n\r\ngrant_type',
    );
    // Another request's answer: by then the server has read the first one's head (in flight).
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
    try {
      await bridge.server.close();
      await ended;
      const cut = bridge.logs.filter((line) => line.includes('requests still in flight were cut'));
      expect(cut).toHaveLength(1);
      expect(JSON.parse(cut[0] as string)).toMatchObject({ cut: 1, timeoutSeconds: 1 });
      expect(JSON.parse(bridge.logs.at(-1) as string)).toMatchObject({
        msg: 'stopped: server and stores closed',
        inFlight: 1,
        drained: 0,
        cut: 1,
      });
    } finally {
      socket.destroy();
      await bridge.close();
    }
  });

  test('a shutdown that finishes every request in time says nothing of cuts', async () => {
    const bridge = await startBridge({ storage: 'embedded' });
    expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
    await bridge.server.close();
    expect(bridge.logs.join('')).not.toContain('were cut');
    await bridge.close();
  });
});

describe('startup', () => {
  test('a request that arrives before the application is ready gets 503, not silence', async () => {
    const early: Array<{ status: number; retryAfter: string | null; type: string | null; body: string }> = [];
    const ask = async (url: string, headers: Record<string, string>) => {
      const answer = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
      early.push({
        status: answer.status,
        retryAfter: answer.headers.get('retry-after'),
        type: answer.headers.get('content-type'),
        body: await answer.text(),
      });
    };
    const bridge = await startBridge({
      storage: 'embedded',
      whileStarting: async (url) => {
        await ask(`${url}/readyz`, {});
        // A person's browser: a sentence in their language, not JSON.
        await ask(`${url}/auth`, { accept: 'text/html,*/*', 'accept-language': 'zh-CN,zh;q=0.9' });
        await ask(`${url}/healthz`, {});
      },
    });
    try {
      expect(early[0]).toEqual({
        status: 503,
        retryAfter: '1',
        type: 'application/json',
        body: JSON.stringify({ error: 'temporarily_unavailable', error_description: 'starting' }),
      });
      expect(early[1]).toMatchObject({ status: 503, retryAfter: '1', type: 'text/html; charset=utf-8' });
      expect(early[1]?.body).toContain('登录服务暂时不可用');
      // Liveness says the process is up, starting or not: a restart would only start it again.
      expect(early[2]).toMatchObject({ status: 200, body: '{"status":"ok"}' });
      expect((await fetch(`${bridge.url}/healthz`)).status).toBe(200);
    } finally {
      await bridge.close();
    }
  });
});

describe('connection deadlines', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    // A second for a request's headers: an idle connection is not one sending them.
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, limits: { ...SECTION_DEFAULTS.limits, headersTimeout: 1 } }),
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  test('a client trickling its headers is answered 408 and cut off once their deadline passes', async () => {
    const socket = connect(Number(new URL(bridge.url).port), '127.0.0.1');
    const answer = readAll(socket);
    socket.write(`GET /healthz HTTP/1.1\r\nHost: ${new URL(bridge.url).host}\r\n`);
    // A header line every 100 ms, for up to 20 s: the request's headers never end.
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent++ < 200 && !socket.destroyed) socket.write(`X-Slow-${sent}: 1\r\n`);
    }, 100);
    try {
      const text = await answer;
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      // Cut off before the trickle ran out: the deadline, not the client, ended it.
      expect(sent).toBeLessThan(200);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });

  test("an idle keep-alive connection is still open after Node's default 5 s and past the headers deadline, for a proxy that reuses it", async () => {
    const { port } = new URL(bridge.url);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    const answers: string[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => answers.push(chunk));
    const ask = async () => {
      const before = answers.join('').split('HTTP/1.1 ').length;
      socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      await expect.poll(() => answers.join('').split('HTTP/1.1 ').length).toBe(before + 1);
    };
    await ask();
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(socket.destroyed || socket.readableEnded).toBe(false);
    await ask();
    expect(answers.join('').match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    socket.destroy();
  }, 15_000);
});

/** Everything the server sends on `socket` until it closes the connection. */
function readAll(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}
