import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLogger } from '../../src/observability/logger.ts';
import { type RunningServer, startServer } from '../../src/server.ts';
import { type Bridge, startBridge } from '../helpers/bridge.ts';
import { createSandboxUser, loginAs, relyingParty } from '../helpers/flow.ts';

const silent = () =>
  createLogger({
    level: 'silent',
    destination: new Writable({ write: (_chunk, _enc, done) => done() }),
  });

// The embedded store is a server's own (PGlite for accounts, a SQLite file for what a login leaves
// behind): what was issued must outlive a restart, and a second server must keep off its files.
describe('the embedded store across a restart', () => {
  let bridge: Bridge;
  let restarted: RunningServer | undefined;
  beforeAll(async () => {
    bridge = await startBridge({ storage: 'embedded' });
  });
  afterAll(async () => {
    await restarted?.close();
    await bridge?.close();
  });

  test('a second server on the same data directory is refused while the first runs', async () => {
    await expect(startServer({ ...bridge.server.config, port: 0 }, { logger: silent() })).rejects.toThrow(
      'the embedded store admits one process per data directory',
    );
    // The first is unharmed.
    expect((await fetch(`${bridge.url}/.well-known/openid-configuration`)).status).toBe(200);
  });

  test('tokens issued before a restart still work after it: userinfo, introspection, refresh', async () => {
    const rp = await relyingParty(bridge);
    const user = await createSandboxUser(bridge, '重启之后');
    const { tokens } = await loginAs(rp, user, { scope: 'openid profile offline_access', prompt: 'consent' });
    expect(tokens.refresh_token).toBeDefined();

    await bridge.server.close();
    // Same port and issuer, same data directory: the same deployment, started again.
    restarted = await startServer(bridge.server.config, { logger: silent() });
    expect(restarted.url).toBe(bridge.url);

    const again = await relyingParty(bridge);
    expect(await oidc.fetchUserInfo(again, tokens.access_token, user.unionid)).toMatchObject({
      sub: user.unionid,
      name: '重启之后',
    });
    expect(await oidc.tokenIntrospection(again, tokens.access_token)).toMatchObject({
      active: true,
      sub: user.unionid,
    });
    const refreshed = await oidc.refreshTokenGrant(again, tokens.refresh_token as string);
    expect(refreshed.claims()?.sub).toBe(user.unionid);
  });
});
