import { Redis } from 'ioredis';
import Provider from 'oidc-provider';
import { describe, expect, it } from 'vitest';

/**
 * The patches in patches/ are applied (postinstall): without them every ioredis pipeline and every
 * request's koa context carries an accessor of its own, which made V8 promote them under load.
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
});
