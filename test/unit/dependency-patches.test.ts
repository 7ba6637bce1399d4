import { Redis } from 'ioredis';
import Provider from 'oidc-provider';
import { describe, expect, it } from 'vitest';

/**
 * The patches in patches/ are applied (postinstall): without them every ioredis pipeline and every
 * request's koa context carries an accessor of its own, which made V8 promote them under load, and
 * every userinfo call built three errors it did not throw.
 */
describe('dependency patches', () => {
  it('ioredis: a pipeline has no length accessor of its own, and its length still counts commands', () => {
    const redis = new Redis({ lazyConnect: true });
    const pipeline = redis.pipeline().get('a').get('b');
    expect(Object.getOwnPropertyDescriptor(pipeline, 'length')).toBeUndefined();
    expect(pipeline.length).toBe(2);
    redis.disconnect();
  });

  it('oidc-provider: ctx.oidc comes from the context prototype, and only for its own routes', async () => {
    const provider = new Provider('http://localhost:3000', { clients: [] });
    const seen: Array<{ own: boolean; oidc: boolean }> = [];
    provider.use(async (ctx, next) => {
      await next();
      seen.push({ own: Object.hasOwn(ctx, 'oidc'), oidc: ctx.oidc !== undefined });
    });
    const server = provider.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    try {
      const discovery = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      await fetch(`http://127.0.0.1:${port}/not-a-route`);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(seen).toEqual([
      { own: false, oidc: true },
      { own: false, oidc: false },
    ]);
  });

  it('oidc-provider: a good access token at userinfo builds no InvalidToken; a bad one still gets 401', async () => {
    const provider = new Provider('http://localhost:3000', {
      clients: [{ client_id: 'c', client_secret: 's', redirect_uris: ['https://rp.example/cb'] }],
      findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    });
    const grant = new provider.Grant({ accountId: 'someone', clientId: 'c' });
    grant.addOIDCScope('openid');
    const grantId = await grant.save();
    const client = await provider.Client.find('c');
    if (!client) throw new Error('client c not registered');
    const token = new provider.AccessToken({
      accountId: 'someone',
      client,
      grantId,
      scope: 'openid',
      gty: 'authorization_code',
    });
    const value = await token.save();
    const server = provider.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    // InvalidToken's constructor captures its stack by name: counting those calls counts the errors.
    const capture = Error.captureStackTrace;
    let built = 0;
    Error.captureStackTrace = (target: object, ...rest) => {
      if ((target as Error).constructor?.name === 'InvalidToken') built += 1;
      capture(target, ...rest);
    };
    try {
      const me = (bearer: string) =>
        fetch(`http://127.0.0.1:${port}/me`, { headers: { authorization: `Bearer ${bearer}` } });
      const good = await me(value);
      expect(good.status).toBe(200);
      expect(await good.json()).toEqual({ sub: 'someone' });
      expect(built).toBe(0);
      const bad = await me('not-a-token');
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toContain('invalid_token');
      expect(built).toBe(1);
    } finally {
      Error.captureStackTrace = capture;
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("oidc-provider: its self-submitting form's page is the configuration's formPostSource, else the engine's own", async () => {
    const clients = [{ client_id: 'c', client_secret: 's', redirect_uris: ['https://rp.example/cb'] }];
    const seen: Array<{ form: string; script: string }> = [];
    const ours = new Provider('http://localhost:3000', {
      clients,
      formPostSource(ctx, form, script) {
        seen.push({ form, script });
        ctx.body = `<title>ours</title>${form}<script>${script}</script>`;
      },
    });
    const engines = new Provider('http://localhost:3000', { clients });
    // No session: prompt=none's login_required goes back to the client in a self-submitting form.
    const request = new URLSearchParams({
      client_id: 'c',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: 'https://rp.example/cb',
      prompt: 'none',
      response_mode: 'form_post',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      state: 'a"<b',
    });
    const pageOf = async (provider: Provider) => {
      const server = provider.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      const { port } = server.address() as { port: number };
      try {
        return await (await fetch(`http://127.0.0.1:${port}/auth?${request}`)).text();
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    };
    const page = await pageOf(ours);
    expect(
      page.startsWith(
        '<title>ours</title><form method="post" action="https://rp.example/cb" id="op.formPost">',
      ),
    ).toBe(true);
    // The inputs escaped by the engine; the script submits the form by its id.
    expect(seen[0]?.form).toContain('<input type="hidden" name="error" value="login_required"/>');
    expect(seen[0]?.form).toContain('<input type="hidden" name="state" value="a&quot;&lt;b"/>');
    expect(seen[0]?.script).toContain("document.getElementById('op.formPost').submit()");
    const own = await pageOf(engines);
    expect(own).toContain('<title>Submitting Callback</title>');
    expect(own).toContain('<button autofocus type="submit" form="op.formPost">Continue</button>');
  });

  it('oidc-provider: a failed client authentication is 401 invalid_client with its reason, and WWW-Authenticate when the header was tried (RFC 6749 5.2); a plain OPTIONS is 204 with Allow', async () => {
    const provider = new Provider('http://localhost:3000', {
      clients: [{ client_id: 'c', client_secret: 's', redirect_uris: ['https://rp.example/cb'] }],
    });
    const server = provider.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const token = (headers: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${port}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: 'grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Frp.example%2Fcb',
      });
    try {
      const none = await token();
      expect(none.status).toBe(401);
      expect(await none.json()).toEqual({
        error: 'invalid_client',
        error_description: 'no client authentication mechanism provided',
      });
      // No Authorization header tried: no challenge.
      expect(none.headers.get('www-authenticate')).toBeNull();
      for (const [authorization, description] of [
        [
          `Basic ${Buffer.from('c:').toString('base64')}`,
          'client_secret must be provided in the Authorization header',
        ],
        ['Basic !!!', 'invalid authorization header value format'],
        ['Bearer abc', 'invalid authorization header value format'],
      ] as const) {
        const tried = await token({ authorization });
        expect(tried.status, authorization).toBe(401);
        expect(await tried.json(), authorization).toEqual({
          error: 'invalid_client',
          error_description: description,
        });
        expect(tried.headers.get('www-authenticate'), authorization).toMatch(
          /^Basic realm="http:\/\/localhost:3000", error="invalid_client"/,
        );
      }
      // A wrong secret was 401 before the patch too, with the engine's generic description.
      const wrong = await token({ authorization: `Basic ${Buffer.from('c:wrong').toString('base64')}` });
      expect(wrong.status).toBe(401);

      const options = await fetch(`http://127.0.0.1:${port}/token`, { method: 'OPTIONS' });
      expect(options.status).toBe(204);
      expect(options.headers.get('allow')?.split(', ').sort()).toEqual(['OPTIONS', 'POST']);
      // A CORS preflight is answered by the CORS middleware, as before.
      const preflight = await fetch(`http://127.0.0.1:${port}/token`, {
        method: 'OPTIONS',
        headers: { origin: 'https://rp.example', 'access-control-request-method': 'POST' },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
