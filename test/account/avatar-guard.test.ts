import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type AvatarFetchPolicy, fetchAvatar } from '../../src/accounts/avatars/guard.ts';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 73, 72, 68, 82]);
const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46]);

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A small local HTTP server; its host (127.0.0.1:port) is what an allow-list names. */
async function serve(handler: RequestListener): Promise<{ url: string; host: string }> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}` };
}

const policy = (hosts: string[], extra: Partial<AvatarFetchPolicy> = {}): AvatarFetchPolicy => ({
  allowedHosts: hosts,
  maxBytes: 1024,
  timeoutMs: 2000,
  ...extra,
});

const image =
  (body: Buffer, type = 'image/png'): RequestListener =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length });
    res.end(body);
  };

describe('the avatar download guard', () => {
  it('downloads an image from an allowed host and reports the type found in its bytes', async () => {
    const origin = await serve(image(JPEG, 'image/jpeg'));
    const result = await fetchAvatar(`${origin.url}/a/132`, policy([origin.host]));
    expect(result.contentType).toBe('image/jpeg');
    expect(Buffer.from(result.bytes)).toEqual(JPEG);
  });

  it('refuses a host that is not allowed without connecting to it', async () => {
    let contacted = false;
    const origin = await serve((req, res) => {
      contacted = true;
      image(PNG)(req, res);
    });
    await expect(fetchAvatar(`${origin.url}/a`, policy(['thirdwx.qlogo.cn']))).rejects.toMatchObject({
      code: 'host_not_allowed',
    });
    expect(contacted).toBe(false);
  });

  it('refuses other schemes and credentials in the URL', async () => {
    const origin = await serve(image(PNG));
    await expect(fetchAvatar('file:///etc/passwd', policy([origin.host]))).rejects.toMatchObject({
      code: 'invalid_url',
    });
    await expect(fetchAvatar(`http://user:pw@${origin.host}/a`, policy([origin.host]))).rejects.toMatchObject(
      { code: 'invalid_url' },
    );
  });

  it('refuses a redirect to another host', async () => {
    let innerContacted = false;
    const inner = await serve((req, res) => {
      innerContacted = true;
      image(PNG)(req, res);
    });
    const outer = await serve((_req, res) => {
      res.writeHead(302, { location: `${inner.url}/internal` });
      res.end();
    });
    await expect(fetchAvatar(`${outer.url}/a`, policy([outer.host]))).rejects.toMatchObject({
      code: 'redirect_refused',
    });
    expect(innerContacted).toBe(false);
  });

  it('follows a redirect that stays on allowed hosts', async () => {
    const origin = await serve((req, res) => {
      if (req.url === '/moved') image(PNG)(req, res);
      else {
        res.writeHead(301, { location: '/moved' });
        res.end();
      }
    });
    const result = await fetchAvatar(`${origin.url}/a`, policy([origin.host]));
    expect(result.contentType).toBe('image/png');
  });

  it('refuses a redirect loop on an allowed host', async () => {
    const origin = await serve((_req, res) => {
      res.writeHead(302, { location: '/again' });
      res.end();
    });
    await expect(fetchAvatar(`${origin.url}/a`, policy([origin.host]))).rejects.toMatchObject({
      code: 'redirect_refused',
    });
  });

  it('refuses a body announced larger than the limit', async () => {
    const origin = await serve(image(Buffer.concat([PNG, Buffer.alloc(4096)])));
    await expect(fetchAvatar(`${origin.url}/a`, policy([origin.host]))).rejects.toMatchObject({
      code: 'too_large',
    });
  });

  it('stops reading a huge body sent without a length', async () => {
    let written = 0;
    const origin = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(PNG);
      // Keeps sending until the client hangs up: a limit checked only at the end would never end.
      const chunk = Buffer.alloc(16 * 1024);
      const pump = () => {
        while (!res.destroyed && written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => {});
      pump();
    });
    await expect(fetchAvatar(`${origin.url}/a`, policy([origin.host]))).rejects.toMatchObject({
      code: 'too_large',
    });
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('refuses a body that is not declared as an image', async () => {
    const origin = await serve(image(Buffer.from('<html>login</html>'), 'text/html'));
    await expect(fetchAvatar(`${origin.url}/a`, policy([origin.host]))).rejects.toMatchObject({
      code: 'not_image',
    });
  });

  it('refuses an SVG even when declared as an image', async () => {
    const origin = await serve(image(Buffer.from('<svg onload="alert(1)"/>'), 'image/svg+xml'));
    await expect(fetchAvatar(`${origin.url}/a`, policy([origin.host]))).rejects.toMatchObject({
      code: 'not_image',
    });
  });

  it('refuses bytes that are not an image whatever the content type says', async () => {
    const origin = await serve(image(Buffer.from('<script>alert(1)</script>'), 'image/png'));
    await expect(fetchAvatar(`${origin.url}/a`, policy([origin.host]))).rejects.toMatchObject({
      code: 'not_image',
    });
  });

  it('gives up on a server that never answers', async () => {
    const origin = await serve(() => {
      // Never answers.
    });
    await expect(
      fetchAvatar(`${origin.url}/a`, policy([origin.host], { timeoutMs: 200 })),
    ).rejects.toMatchObject({ code: 'timeout' });
  });

  it('gives up on a server that sends headers and then stalls the body', async () => {
    const origin = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 1000 });
      res.write(PNG);
    });
    await expect(
      fetchAvatar(`${origin.url}/a`, policy([origin.host], { timeoutMs: 200 })),
    ).rejects.toMatchObject({ code: 'timeout' });
  });

  it('reports an error status without reading the body as an image', async () => {
    const origin = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'image/png' });
      res.end(PNG);
    });
    await expect(fetchAvatar(`${origin.url}/a`, policy([origin.host]))).rejects.toMatchObject({
      code: 'http_status',
    });
  });
});
