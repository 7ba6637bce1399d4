import { createPublicKey, verify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  findAccountBySubject,
  listIdentities,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import { ACCOUNT_EVENT_TYPES } from '../../src/accounts/webhooks.ts';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import { createSandboxUser, loginAs, relyingParty } from '../helpers/flow.ts';

const EVENTS_RP = {
  ...RP,
  client_id: 'test-events-rp',
  client_secret: 'test-events-rp-secret-0123456789abc',
};

interface Delivery {
  contentType: string | undefined;
  token: string;
}

async function eventReceiver(): Promise<{ server: Server; url: string; deliveries: Delivery[] }> {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      deliveries.push({ contentType: req.headers['content-type'], token: body });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`, deliveries };
}

/** Verifies a JWS against the issuer's published keys, as a relying party would. */
async function verifiedClaims(bridge: Bridge, token: string): Promise<Record<string, unknown>> {
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const { kid, alg, typ } = JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, string>;
  expect(typ).toBe('secevent+jwt');
  const jwks = (await (await fetch(`${bridge.url}/jwks`)).json()) as { keys: Array<Record<string, string>> };
  const jwk = jwks.keys.find((key) => key.kid === kid);
  if (!jwk) throw new Error('signing key not published');
  const key = createPublicKey({ key: jwk as never, format: 'jwk' });
  const input = Buffer.from(`${header}.${payload}`);
  const sig = Buffer.from(signature, 'base64url');
  const ok =
    alg === 'RS256'
      ? verify('sha256', input, key, sig)
      : alg === 'EdDSA'
        ? verify(null, input, key, sig)
        : verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, sig);
  expect(ok).toBe(true);
  return JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
}

describe('account events pushed to relying parties that registered account_events_uri', () => {
  let bridge: Bridge;
  let receiver: Awaited<ReturnType<typeof eventReceiver>>;
  let rp: oidc.Configuration;
  beforeAll(async () => {
    receiver = await eventReceiver();
    bridge = await startBridge({
      storage: 'embedded',
      configure: (config) => ({
        ...config,
        clients: [...config.clients, { ...EVENTS_RP, account_events_uri: receiver.url }],
      }),
    });
    rp = await relyingParty(bridge, EVENTS_RP);
  });
  afterAll(async () => {
    await bridge?.close();
    receiver?.server.close();
  });

  test('an unbind and then a deletion each reach the client as a signed event about its sub', async () => {
    const user = await createSandboxUser(bridge, '事件');
    const { login } = await loginAs(rp, user, { scope: 'openid profile' });
    // A relying party that never registered is not told (test-rp holds no grant here anyway).
    const db = bridge.server.stores.db;
    const account = await findAccountBySubject(db, user.unionid);
    await setVerifiedPhoneNumber(db, account?.id as string, '+8613900001111', new Date());
    const page = await login.browser.follow(`${bridge.url}/account`);
    const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1] as string;
    const [identity] = await listIdentities(db, account?.id as string);

    await login.browser.request(`${bridge.url}/account/unbind`, {
      method: 'POST',
      form: { csrf, appid: identity?.appid as string, openid: identity?.openid as string },
    });
    expect(receiver.deliveries).toHaveLength(1);
    expect(receiver.deliveries[0]?.contentType).toBe('application/secevent+jwt');
    const changed = await verifiedClaims(bridge, receiver.deliveries[0]?.token as string);
    expect(changed).toMatchObject({ iss: bridge.url, aud: EVENTS_RP.client_id, sub: user.unionid });
    expect(changed.events).toEqual({ [ACCOUNT_EVENT_TYPES.identitiesChanged]: { appids: [] } });

    await login.browser.request(`${bridge.url}/account/delete/confirm`, {
      method: 'POST',
      form: { csrf, confirm: 'yes' },
    });
    expect(receiver.deliveries).toHaveLength(2);
    const deleted = await verifiedClaims(bridge, receiver.deliveries[1]?.token as string);
    expect(deleted).toMatchObject({ aud: EVENTS_RP.client_id, sub: user.unionid });
    expect(deleted.events).toEqual({ [ACCOUNT_EVENT_TYPES.deleted]: {} });
    expect(JSON.stringify(deleted)).not.toContain('事件');
  });
});
