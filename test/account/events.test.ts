import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  findAccountBySubject,
  listIdentities,
  setVerifiedPhoneNumber,
} from '../../src/accounts/repository.ts';
import { unbindIdentity } from '../../src/accounts/unbind.ts';
import { ACCOUNT_EVENT_TYPES } from '../../src/accounts/webhooks.ts';
import { databaseNowPlus } from '../../src/storage/dialect.ts';
import {
  type Bridge,
  MINI_PROGRAM_APP,
  MINI_PROGRAM_CLIENT,
  OFFICIAL_ACCOUNT_APP,
  RP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import type { TestBrowser } from '../helpers/browser.ts';
import {
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  loginStarted,
  relyingParty,
  type SandboxUser,
} from '../helpers/flow.ts';
import {
  callMiniProgram,
  exchangeJsCode,
  miniProgramClient,
  wxLogin,
  wxPhoneCode,
} from '../helpers/mini-program.ts';
import { loginInWeChat, loginInWeChatAs } from '../helpers/official-account.ts';
import { whileOutboxRefuses } from '../helpers/outbox-fault.ts';

const EVENTS_RP = {
  ...RP,
  client_id: 'test-events-rp',
  client_secret: 'test-events-rp-secret-0123456789abc',
};

interface Delivery {
  contentType: string | undefined;
  token: string;
  /** The token's payload, unverified (verifiedClaims checks the signature). */
  claims: Record<string, unknown>;
  /** What the receiver answered. */
  status: number;
}

/** A relying party's account_events_uri; `failNext` makes it answer 500 that many times for a sub. */
async function eventReceiver() {
  const deliveries: Delivery[] = [];
  const failNext = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      const claims = payloadOf(body);
      const failures = failNext.get(String(claims.sub)) ?? 0;
      if (failures > 0) failNext.set(String(claims.sub), failures - 1);
      const status = failures > 0 ? 500 : 202;
      deliveries.push({ contentType: req.headers['content-type'], token: body, claims, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    failNext,
    /** What reached the receiver about `sub`, for `aud`, in order. */
    about: (sub: string, aud = EVENTS_RP.client_id) =>
      deliveries.filter((d) => d.claims.sub === sub && d.claims.aud === aud),
  };
}

function payloadOf(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as Record<
      string,
      unknown
    >;
  } catch {
    return {};
  }
}

/** Verifies a JWS against the issuer's published keys, as a relying party would. */
async function verifiedClaims(bridge: Bridge, token: string): Promise<Record<string, unknown>> {
  const keys = createRemoteJWKSet(new URL(`${bridge.url}/jwks`));
  const { payload } = await jwtVerify(token, keys, { issuer: bridge.url, typ: 'secevent+jwt' });
  return payload;
}

/** Rows still waiting in the outbox: an event enqueued is either here or at the receiver. */
async function queued(bridge: Bridge): Promise<number> {
  const row = await bridge.server.stores.db
    .selectFrom('account_event_deliveries')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`account events pushed to account_events_uri (${storage})`, () => {
    let bridge: Bridge;
    let receiver: Awaited<ReturnType<typeof eventReceiver>>;
    let rp: oidc.Configuration;
    let mp: oidc.Configuration;
    beforeAll(async () => {
      receiver = await eventReceiver();
      bridge = await startBridge({
        storage,
        apps: [WEBSITE_APP, OFFICIAL_ACCOUNT_APP, MINI_PROGRAM_APP],
        configure: (config) => ({
          ...config,
          clients: [
            ...config.clients,
            { ...EVENTS_RP, account_events_uri: receiver.url },
            { ...MINI_PROGRAM_CLIENT, account_events_uri: receiver.url },
          ],
        }),
        eventDelivery: { retryDelaysMs: [30, 30, 30], pollIntervalMs: 20 },
      });
      rp = await relyingParty(bridge, EVENTS_RP);
      mp = await miniProgramClient(bridge);
    });
    afterAll(async () => {
      await bridge?.close();
      receiver?.server.close();
    });

    const miniProgramLogin = async (user: SandboxUser) =>
      exchangeJsCode(mp, await wxLogin(bridge, user), { scope: 'openid phone' });
    const provePhone = async (user: SandboxUser, accessToken: string, purePhoneNumber: string) => {
      const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber });
      expect((await callMiniProgram(bridge, 'phone-number', accessToken, { code })).status).toBe(200);
    };

    /**
     * Deletes the account on the account page; the account-deleted event the client receives about
     * it (the `nth` event about its sub), its signature verified.
     */
    const deleteAndHear = async (browser: TestBrowser, csrf: string, user: SandboxUser, nth: number) => {
      await browser.request(`${bridge.url}/account/delete/confirm`, {
        method: 'POST',
        form: { csrf, confirm: 'yes' },
      });
      await expect.poll(() => receiver.about(user.unionid)).toHaveLength(nth + 1);
      const deleted = await verifiedClaims(bridge, receiver.about(user.unionid)[nth]?.token as string);
      expect(deleted).toMatchObject({ aud: EVENTS_RP.client_id, sub: user.unionid });
      expect(deleted.events).toEqual({ [ACCOUNT_EVENT_TYPES.deleted]: {} });
      return deleted;
    };

    test('an unbind and then a deletion each reach the client as a signed event about its sub', async () => {
      const user = await createSandboxUser(bridge, '事件');
      const { login } = await loginAs(rp, user, { scope: 'openid profile' });
      const db = bridge.server.stores.db;
      const account = await findAccountBySubject(db, user.unionid);
      await setVerifiedPhoneNumber(db, account?.id as string, '+8613900001111', new Date());
      const page = await login.browser.follow(`${bridge.url}/account`);
      const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1] as string;
      const [identity] = await listIdentities(db, account?.id as string);

      await login.browser.request(`${bridge.url}/account/unbind/confirm`, {
        method: 'POST',
        form: { csrf, appid: identity?.appid as string, openid: identity?.openid as string },
      });
      await expect.poll(() => receiver.about(user.unionid)).toHaveLength(1);
      const [changedDelivery] = receiver.about(user.unionid);
      expect(changedDelivery?.contentType).toBe('application/secevent+jwt');
      const changed = await verifiedClaims(bridge, changedDelivery?.token as string);
      expect(changed).toMatchObject({ iss: bridge.url, aud: EVENTS_RP.client_id, sub: user.unionid });
      expect(changed.events).toEqual({ [ACCOUNT_EVENT_TYPES.identitiesChanged]: { appids: [] } });

      const deleted = await deleteAndHear(login.browser, csrf, user, 1);
      expect(JSON.stringify(deleted)).not.toContain('事件');
    });

    test("a client the person logged out of still hears of the account's deletion: it knows the sub by the consent remembered", async () => {
      const user = await createSandboxUser(bridge, '退出后注销');
      const { login, tokens } = await loginAs(rp, user, { scope: 'openid profile' });
      // Logged out at the relying party (RP-initiated logout): its grant, without offline_access, ends.
      const endSession = oidc.buildEndSessionUrl(rp, {
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: EVENTS_RP.post_logout_redirect_uris?.[0] as string,
      });
      const logoutPage = await login.browser.follow(endSession.href);
      const xsrf = logoutPage.body.match(/name="xsrf" value="([^"]+)"/)?.[1] as string;
      await login.browser.request(`${bridge.url}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);

      // Later the person deletes the account on the account page, after logging in there.
      const loginPage = await login.browser.follow(`${bridge.url}/account`);
      const accountLogin = loginStarted(login.browser, { expectedState: '' }, loginPage);
      const callback = await decideOnWeChat(accountLogin, { user, allow: true });
      const page = await login.browser.follow(new URL(callback.location as string, bridge.url).href);
      const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1] as string;
      await deleteAndHear(login.browser, csrf, user, 0);
    });

    test('a login through a second WeChat app tells the relying party every app linked now, once', async () => {
      const user = await createSandboxUser(bridge, '第二个应用');
      await loginAs(rp, user, { scope: 'openid profile' });
      // The first login created the account: no relying party knew it, nobody is told.
      expect(receiver.about(user.unionid)).toHaveLength(0);

      await loginInWeChatAs(rp, user, { scope: 'openid profile' });
      await expect.poll(() => receiver.about(user.unionid)).toHaveLength(1);
      const changed = await verifiedClaims(bridge, receiver.about(user.unionid)[0]?.token as string);
      expect(changed).toMatchObject({ iss: bridge.url, aud: EVENTS_RP.client_id, sub: user.unionid });
      expect(changed.events).toEqual({
        [ACCOUNT_EVENT_TYPES.identitiesChanged]: {
          appids: [WEBSITE_APP.appid, OFFICIAL_ACCOUNT_APP.appid],
        },
      });

      // The same app again (a silent snsapi_base login): nothing new is linked, nothing is sent.
      await expect.poll(() => queued(bridge)).toBe(0);
      await loginInWeChatAs(rp, user, { scope: 'openid profile' });
      expect(await queued(bridge)).toBe(0);
      expect(receiver.about(user.unionid)).toHaveLength(1);
    });

    test('a receiver answering 500 twice gets the same signed event again, then it is delivered once', async () => {
      const user = await createSandboxUser(bridge, '重试');
      await loginAs(rp, user, { scope: 'openid profile' });
      receiver.failNext.set(user.unionid, 2);
      await miniProgramLogin(user);

      await expect.poll(() => receiver.about(user.unionid).map((d) => d.status)).toEqual([500, 500, 202]);
      await expect.poll(() => queued(bridge)).toBe(0);
      const attempts = receiver.about(user.unionid);
      expect(new Set(attempts.map((d) => d.token)).size).toBe(1);
      const claims = await verifiedClaims(bridge, attempts[2]?.token as string);
      expect(claims).toMatchObject({ aud: EVENTS_RP.client_id, sub: user.unionid });
      expect(claims.events).toEqual({
        [ACCOUNT_EVENT_TYPES.identitiesChanged]: { appids: [WEBSITE_APP.appid, MINI_PROGRAM_APP.appid] },
      });
      const logs = bridge.logs.join('');
      expect(logs).toContain('account event not delivered: will retry');
      expect(logs).not.toContain(attempts[0]?.token as string);
    });

    test('the metrics count an event given up after its last attempt, and the events waiting', async () => {
      const scrape = async () => (await fetch(`${bridge.url}/metrics`)).text();
      const givenUp = (text: string) =>
        Number(
          new RegExp(`account_events_given_up_total\\{client="${EVENTS_RP.client_id}"\\} (\\d+)`).exec(
            text,
          )?.[1] ?? 0,
        );
      const before = givenUp(await scrape());
      const user = await createSandboxUser(bridge, '放弃');
      await loginAs(rp, user, { scope: 'openid profile' });
      receiver.failNext.set(user.unionid, 1000);
      await miniProgramLogin(user);
      await expect.poll(() => queued(bridge)).toBe(0);
      expect(givenUp(await scrape())).toBe(before + 1);

      // A row not due for an hour: it waits, and the gauge says so.
      const { db } = bridge.server.stores;
      await db
        .insertInto('account_event_deliveries')
        .values({
          client_id: EVENTS_RP.client_id,
          event_type: 'identitiesChanged',
          events_uri: receiver.url,
          token: 'not-a-token',
          next_attempt_at: databaseNowPlus(db, 3_600_000),
        })
        .execute();
      try {
        expect(await scrape()).toMatch(/\naccount_events_pending 1\n/);
      } finally {
        await db.deleteFrom('account_event_deliveries').where('token', '=', 'not-a-token').execute();
      }
      expect(await scrape()).toMatch(/\naccount_events_pending 0\n/);
    });

    test('a phone that recovers a waiting account tells its clients, and the clients of the folded account of its deletion', async () => {
      const db = bridge.server.stores.db;
      const before = await createSandboxUser(bridge, '旧微信');
      await loginAs(rp, before, { scope: 'openid profile' });
      const first = await miniProgramLogin(before);
      await provePhone(before, first.access_token, '13955556666');
      const account = await findAccountBySubject(db, before.unionid);
      for (const identity of await listIdentities(db, account?.id as string))
        expect(await unbindIdentity(db, account?.id as string, identity, new Date())).toBe('unbound');
      await expect.poll(() => receiver.about(before.unionid)).toHaveLength(1); // the mini program's link

      // A new WeChat: a fresh account (nobody is told), until it proves the same phone.
      const after = await createSandboxUser(bridge, '新微信');
      const fresh = await miniProgramLogin(after);
      expect(fresh.claims()?.sub).toBe(after.unionid);
      await provePhone(after, fresh.access_token, '13955556666');

      await expect.poll(() => receiver.about(before.unionid)).toHaveLength(2);
      const changed = await verifiedClaims(bridge, receiver.about(before.unionid)[1]?.token as string);
      expect(changed).toMatchObject({ aud: EVENTS_RP.client_id, sub: before.unionid });
      expect(changed.events).toEqual({
        [ACCOUNT_EVENT_TYPES.identitiesChanged]: { appids: [MINI_PROGRAM_APP.appid] },
      });
      await expect.poll(() => receiver.about(after.unionid, MINI_PROGRAM_CLIENT.client_id)).toHaveLength(1);
      const deleted = await verifiedClaims(
        bridge,
        receiver.about(after.unionid, MINI_PROGRAM_CLIENT.client_id)[0]?.token as string,
      );
      expect(deleted.events).toEqual({ [ACCOUNT_EVENT_TYPES.deleted]: {} });
      expect(receiver.about(after.unionid)).toHaveLength(0); // EVENTS_RP never knew that sub
    });

    /**
     * Regression: the events were enqueued in a statement of their own after the change they
     * announce had committed, so a failure in between (the database, a crash, a shutdown) made the
     * change and lost its event for good: the person saw the unbinding or deletion done, or the
     * login go on, and the relying party never heard of it. Now the outbox rows are written in the
     * change's transaction: the outbox refusing them undoes the change and the person gets an error,
     * and their retry makes both.
     */
    describe('events are written with the change they announce, or the change is undone', () => {
      const db = () => bridge.server.stores.db;
      const accountOf = async (user: SandboxUser) => {
        const account = await findAccountBySubject(db(), user.unionid);
        if (!account) throw new Error(`no account for ${user.nickname}`);
        return account;
      };
      const appidsOf = async (user: SandboxUser) =>
        (await listIdentities(db(), (await accountOf(user)).id)).map((identity) => identity.appid);
      /** The account page's form token, on the browser's single sign-on session. */
      const accountPageCsrf = async (browser: TestBrowser) => {
        const page = await browser.follow(`${bridge.url}/account`);
        const csrf = page.body.match(/name="csrf" value="([^"]+)"/)?.[1];
        if (!csrf) throw new Error(`no account page: ${page.body.slice(0, 300)}`);
        return csrf;
      };
      const phoneBound = async (user: SandboxUser, accessToken: string, purePhoneNumber: string) => {
        const { code } = await wxPhoneCode(bridge, user, { countryCode: '86', purePhoneNumber });
        return (await callMiniProgram(bridge, 'phone-number', accessToken, { code })).status;
      };
      const eventsAbout = async (sub: string, aud = EVENTS_RP.client_id) =>
        Promise.all(
          receiver.about(sub, aud).map(async (d) => (await verifiedClaims(bridge, d.token)).events),
        );

      test('an unbinding on the account page', async () => {
        const user = await createSandboxUser(bridge, '解绑未记');
        const { login } = await loginAs(rp, user, { scope: 'openid profile' });
        await setVerifiedPhoneNumber(db(), (await accountOf(user)).id, '+8613900002222', new Date());
        const csrf = await accountPageCsrf(login.browser);
        const form = { csrf, appid: WEBSITE_APP.appid, openid: user.openids[WEBSITE_APP.appid] as string };
        const unbind = () =>
          login.browser.request(`${bridge.url}/account/unbind/confirm`, { method: 'POST', form });

        const refused = await whileOutboxRefuses(db(), unbind);
        expect(refused.status).toBe(500);
        expect(await appidsOf(user)).toEqual([WEBSITE_APP.appid]);

        expect((await unbind()).location).toBe(`${bridge.url}/account?lang=zh-CN`);
        expect(await appidsOf(user)).toEqual([]);
        await expect
          .poll(() => eventsAbout(user.unionid))
          .toEqual([{ [ACCOUNT_EVENT_TYPES.identitiesChanged]: { appids: [] } }]);
      });

      test('a deletion on the account page', async () => {
        const user = await createSandboxUser(bridge, '注销未记');
        const { login, tokens } = await loginAs(rp, user, { scope: 'openid profile' });
        const csrf = await accountPageCsrf(login.browser);
        const remove = () =>
          login.browser.request(`${bridge.url}/account/delete/confirm`, {
            method: 'POST',
            form: { csrf, confirm: 'yes' },
          });

        const refused = await whileOutboxRefuses(db(), remove);
        expect(refused.status).toBe(500);
        expect(await findAccountBySubject(db(), user.unionid)).toBeDefined();
        // Nothing was revoked either: the relying party's grant, which the retry must still find.
        expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(true);

        expect((await remove()).status).toBe(200);
        expect(await findAccountBySubject(db(), user.unionid)).toBeUndefined();
        expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
        await expect.poll(() => eventsAbout(user.unionid)).toEqual([{ [ACCOUNT_EVENT_TYPES.deleted]: {} }]);
      });

      test('a login that links another WeChat app', async () => {
        const user = await createSandboxUser(bridge, '链接未记');
        await loginAs(rp, user, { scope: 'openid profile' });

        const refused = await whileOutboxRefuses(db(), () =>
          loginInWeChat(rp, { user, scope: 'openid profile' }),
        );
        expect(refused.redirect).toBeUndefined();
        expect(refused.last.status).toBe(500);
        expect(await appidsOf(user)).toEqual([WEBSITE_APP.appid]);

        await loginInWeChatAs(rp, user, { scope: 'openid profile' });
        expect(await appidsOf(user)).toEqual([WEBSITE_APP.appid, OFFICIAL_ACCOUNT_APP.appid]);
        await expect
          .poll(() => eventsAbout(user.unionid))
          .toEqual([
            {
              [ACCOUNT_EVENT_TYPES.identitiesChanged]: {
                appids: [WEBSITE_APP.appid, OFFICIAL_ACCOUNT_APP.appid],
              },
            },
          ]);
      });

      test("a mini program's token exchange that links it", async () => {
        const user = await createSandboxUser(bridge, '换取未记');
        await loginAs(rp, user, { scope: 'openid profile' });

        await whileOutboxRefuses(db(), () =>
          // openid-client refuses a 500 (server_error) as not an OAuth error answer; the cause is the answer.
          expect(miniProgramLogin(user)).rejects.toMatchObject({ cause: { status: 500 } }),
        );
        expect(await appidsOf(user)).toEqual([WEBSITE_APP.appid]);

        await miniProgramLogin(user);
        expect(await appidsOf(user)).toEqual([WEBSITE_APP.appid, MINI_PROGRAM_APP.appid]);
        await expect
          .poll(() => eventsAbout(user.unionid))
          .toEqual([
            {
              [ACCOUNT_EVENT_TYPES.identitiesChanged]: {
                appids: [WEBSITE_APP.appid, MINI_PROGRAM_APP.appid],
              },
            },
          ]);
      });

      test('a phone that recovers a waiting account', async () => {
        const before = await createSandboxUser(bridge, '旧微信未记');
        await loginAs(rp, before, { scope: 'openid profile' });
        const first = await miniProgramLogin(before);
        expect(await phoneBound(before, first.access_token, '13977778888')).toBe(200);
        const waiting = await accountOf(before);
        for (const identity of await listIdentities(db(), waiting.id))
          expect(await unbindIdentity(db(), waiting.id, identity, new Date())).toBe('unbound');
        await expect.poll(() => receiver.about(before.unionid)).toHaveLength(1); // the mini program's link
        const after = await createSandboxUser(bridge, '新微信未记');
        const fresh = await miniProgramLogin(after);

        const refused = await whileOutboxRefuses(db(), () =>
          phoneBound(after, fresh.access_token, '13977778888'),
        );
        expect(refused).toBe(500);
        expect(await appidsOf(before)).toEqual([]);
        expect(await appidsOf(after)).toEqual([MINI_PROGRAM_APP.appid]);

        expect(await phoneBound(after, fresh.access_token, '13977778888')).toBe(200);
        expect(await appidsOf(before)).toEqual([MINI_PROGRAM_APP.appid]);
        expect(await findAccountBySubject(db(), after.unionid)).toBeUndefined();
        await expect
          .poll(async () => (await eventsAbout(before.unionid)).at(-1))
          .toEqual({ [ACCOUNT_EVENT_TYPES.identitiesChanged]: { appids: [MINI_PROGRAM_APP.appid] } });
        await expect
          .poll(() => eventsAbout(after.unionid, MINI_PROGRAM_CLIENT.client_id))
          .toEqual([{ [ACCOUNT_EVENT_TYPES.deleted]: {} }]);
      });
    });
  });
}
