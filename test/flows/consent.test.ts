import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, RP, STORAGE_SETUPS, startBridge, storageAvailable } from '../helpers/bridge.ts';
import { type Hop, TestBrowser } from '../helpers/browser.ts';
import {
  authorizationRequest,
  consentAction,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  loginAs,
  relyingParty,
  type StartedLogin,
  startLogin,
} from '../helpers/flow.ts';
import { whileStatementsFail } from '../helpers/statement-fault.ts';

/** A browser that remembers every URL it requested. */
class RecordingBrowser extends TestBrowser {
  readonly requested: string[] = [];
  override request(url: string, init: Parameters<TestBrowser['request']>[1] = {}): Promise<Hop> {
    this.requested.push(url);
    return super.request(url, init);
  }
}

const path = (url: string) => new URL(url).pathname;
const interactionUid = (url: string) => path(url).match(/^\/interaction\/([^/]+)/)?.[1];
const isResume = (url: string) => /^\/auth\/[^/]+$/.test(path(url));
const CONSENT_BUTTON = 'id="consent-allow"';

/**
 * The page an answer shows: the answer itself (the WeChat callback answers with the consent page
 * that follows a login), or the page its redirect leads to.
 */
const land = async (login: StartedLogin, hop: Hop) =>
  hop.location ? login.browser.request(hop.location) : hop;

/** Posts the consent page's allow form (for a page without one, its interaction's consent URL). */
const allow = (login: StartedLogin, page: Hop) =>
  login.browser.request(consentAction(page) ?? `${page.url.replace(/\/$/, '')}/consent`, {
    method: 'POST',
    form: {},
  });

/** Where the page's decline form posts. */
const abortAction = (page: Hop) =>
  new URL(/<form method="post" action="([^"]+\/abort)"/.exec(page.body)?.[1] as string, page.url).href;

// The consent page for a third-party client (test-rp). A fresh browser sees it within the login's own
// interaction; a browser whose session already is the person's gets oidc-provider's consent prompt.
for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`consent to a third-party client (${storage})`, () => {
    let bridge: Bridge;
    let rp: oidc.Configuration;
    // Someone who has never allowed test-rp anything, so that the consent page is shown.
    const newcomer = (name = '🐼 熊猫 Panda') => createSandboxUser(bridge, name);

    beforeAll(async () => {
      bridge = await startBridge({ storage });
      rp = await relyingParty(bridge);
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test("a fresh browser consents within the login's interaction, and one resume issues the code", async () => {
      const panda = await newcomer();
      const browser = new RecordingBrowser();
      const login = await startLogin(rp, { browser, scope: 'openid profile' });
      const loginUid = interactionUid(login.interactionUrl);
      const callback = await decideOnWeChat(login, { user: panda, allow: true });
      // The callback answers with the consent page of the same interaction, with the person's name:
      // no redirect to it.
      expect(callback.location).toBeUndefined();
      expect(interactionUid(consentAction(callback) as string)).toBe(loginUid);
      const page = await land(login, callback);
      expect(page.status).toBe(200);
      expect(page.body).toContain(CONSENT_BUTTON);
      expect(page.body).toContain('熊猫 Panda');
      const consent = await allow(login, page);
      expect(isResume(consent.location as string)).toBe(true);
      const redirect = await continueToRp(login, consent);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
      expect(browser.requested.filter(isResume)).toHaveLength(1);
      expect(new Set(browser.requested.map(interactionUid).filter(Boolean))).toEqual(new Set([loginUid]));
    });

    test("the ID token's auth_time is when the person logged in with WeChat, not when they allowed the client", async () => {
      const panda = await newcomer();
      const login = await startLogin(rp, { scope: 'openid profile', extra: { max_age: '600' } });
      const page = await decideOnWeChat(login, { user: panda, allow: true });
      const loggedInBy = Math.floor(Date.now() / 1000);
      expect(page.body).toContain(CONSENT_BUTTON);
      // The person reads the consent page for a while (a second is enough to tell the times apart).
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const allowedFrom = Math.floor(Date.now() / 1000);
      const redirect = await continueToRp(login, await allow(login, page));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, { ...login.checks, maxAge: 600 });
      const authTime = tokens.claims()?.auth_time as number;
      expect(authTime).toBeLessThanOrEqual(loggedInBy);
      expect(authTime).toBeLessThan(allowedFrom);
    });

    test('the consent page answered by the callback survives a reload, and its links lead to the interaction', async () => {
      const panda = await newcomer();
      const login = await startLogin(rp, { scope: 'openid profile' });
      const callback = await decideOnWeChat(login, { user: panda, allow: true });
      expect(callback.body).toContain(CONSENT_BUTTON);
      // The language switch reloads the interaction's page, not the callback (whose code is spent).
      const interactionPage = path(login.interactionUrl);
      expect(callback.body).toContain(`href="${interactionPage}?lang=`);
      // A reload of the callback is a repeated delivery: the browser is sent to the interaction's page.
      const reload = await login.browser.request(callback.url);
      expect(reload.status).toBe(303);
      expect(path(reload.location as string)).toBe(interactionPage);
      const page = await land(login, reload);
      expect(page.body).toContain(CONSENT_BUTTON);
      const redirect = await continueToRp(login, await allow(login, page));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
    });

    // oidc-provider drops a scope it does not know from the request; the page and grant follow it.
    test('a scope the provider does not offer (email) is neither shown nor granted', async () => {
      const tiger = await newcomer('🐯 老虎 Tiger');
      const login = await startLogin(rp, { scope: 'openid email profile' });
      const page = await land(login, await decideOnWeChat(login, { user: tiger, allow: true }));
      const listed = [...page.body.matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]);
      expect(listed).toHaveLength(2);
      expect(listed.join(' ')).not.toMatch(/email/i);
      const redirect = await continueToRp(login, await allow(login, page));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
    });

    test('offline_access asked with prompt=consent gives a refresh token that works', async () => {
      const panda = await newcomer();
      const login = await startLogin(rp, { scope: 'offline_access openid profile', prompt: 'consent' });
      const callback = await decideOnWeChat(login, { user: panda, allow: true });
      // The consent page lists it last, whatever the request's order: its words refer to the others.
      const page = await land(login, callback);
      const items = [...page.body.matchAll(/<li>([^<]*)<\/li>/g)].map((match) => match[1]);
      expect(items).toEqual(['你的账号标识', '你的昵称和头像', '在你离线时继续访问以上信息']);
      const redirect = await continueToRp(login, page);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.refresh_token).toBeTruthy();
      const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
      expect(refreshed.claims()?.sub).toBe(panda.unionid);
    });

    // A double click on "allow" sends the form twice; the browser shows the answer to the last.
    test('an allow posted twice, one after the other or at once, still lands at the client with a working code', async () => {
      for (const together of [false, true]) {
        const panda = await newcomer();
        const login = await startLogin(rp, { scope: 'openid profile' });
        const page = await land(login, await decideOnWeChat(login, { user: panda, allow: true }));
        const post = () => allow(login, page);
        const first = together ? undefined : await post();
        const last = first ? await post() : (await Promise.all([post(), post()]))[1];
        // Redirects only: no page asks again on the way.
        const back = RP.redirect_uris[0] as string;
        const landed = await login.browser.follow(new URL(last.location as string, bridge.url).href, {
          stopAt: back,
        });
        expect(landed.location?.startsWith(back)).toBe(true);
        const tokens = await oidc.authorizationCodeGrant(
          rp,
          new URL(landed.location as string),
          login.checks,
        );
        expect(tokens.claims()?.sub).toBe(panda.unionid);
      }
    });

    test('declining the consent page sends access_denied to the client', async () => {
      const panda = await newcomer();
      const login = await startLogin(rp);
      const page = await land(login, await decideOnWeChat(login, { user: panda, allow: true }));
      expect(page.body).toContain(CONSENT_BUTTON);
      const declined = await login.browser.follow(abortAction(page), {
        method: 'POST',
        form: { reason: 'declined' },
        stopAt: RP.redirect_uris[0],
      });
      const redirect = new URL(declined.location as string);
      expect(redirect.searchParams.get('error')).toBe('access_denied');
      expect(redirect.searchParams.get('state')).toBe(login.checks.expectedState);
    });

    test('a consent posted before the login is done grants nothing and leaves the login page in place', async () => {
      const panda = await newcomer();
      const login = await startLogin(rp);
      const early = await allow(login, { ...login.loginPage, url: login.interactionUrl });
      expect(early.status).toBe(303);
      expect(path(early.location as string)).toBe(path(login.interactionUrl));
      const again = await land(login, early);
      expect(again.body).not.toContain(CONSENT_BUTTON);
      expect(again.body).toContain('wechat-qr');
      // The login itself still goes through, consent included.
      const redirect = await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
    });

    test("a logged-in browser asked for more gets the engine's consent prompt, then no page at all", async () => {
      const panda = await newcomer();
      const login = await startLogin(rp, { scope: 'openid' });
      await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));

      // A new scope: oidc-provider prompts for consent in an interaction of its own.
      const wider = await authorizationRequest(rp, { scope: 'openid profile' });
      const page = await login.browser.follow(wider.url.href);
      expect(page.body).toContain(CONSENT_BUTTON);
      expect(interactionUid(page.url)).not.toBe(interactionUid(login.interactionUrl));
      const redirect = await continueToRp(login, await allow(login, page));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, wider.checks);
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);

      // Everything asked is granted now: straight back to the client.
      const same = await authorizationRequest(rp, { scope: 'openid profile' });
      const back = await login.browser.follow(same.url.href, { stopAt: RP.redirect_uris[0] });
      expect(back.location?.startsWith(RP.redirect_uris[0] as string)).toBe(true);
    });

    test('another person logging in on a browser logged in as someone else gets their own consent and tokens', async () => {
      const panda = await newcomer();
      const tiger = await newcomer('🐯 老虎 Tiger');
      const login = await startLogin(rp);
      await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));

      const relogin = await startLogin(rp, { browser: login.browser, prompt: 'login' });
      const page = await land(relogin, await decideOnWeChat(relogin, { user: tiger, allow: true }));
      expect(page.body).toContain(CONSENT_BUTTON);
      expect(page.body).toContain('老虎 Tiger');
      // oidc-provider ends panda's session first (its confirmation form), then resumes as tiger.
      const resumed = await relogin.browser.request((await allow(relogin, page)).location as string);
      const xsrf = resumed.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
      expect(xsrf).toBeTruthy();
      const loggedOut = await relogin.browser.request(`${bridge.url}/session/end/confirm`, {
        form: { xsrf: xsrf as string, logout: 'yes' },
      });
      const redirect = await continueToRp(relogin, loggedOut);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, relogin.checks);
      expect(tokens.claims()?.sub).toBe(tiger.unionid);
    });

    // Remembered consent (src/accounts/consents.ts): allowed once, not asked again from another browser.
    test('a person who allowed the client before is not asked again from a fresh browser', async () => {
      const panda = await newcomer();
      await loginAs(rp, panda, { scope: 'openid profile' });

      const browser = new RecordingBrowser();
      const login = await startLogin(rp, { browser, scope: 'openid profile' });
      const callback = await decideOnWeChat(login, { user: panda, allow: true });
      // Straight from the callback to the resume: no consent page, no second interaction.
      expect(isResume(callback.location as string)).toBe(true);
      const redirect = await continueToRp(login, callback);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
      expect(browser.requested.some((url) => path(url).endsWith('/consent'))).toBe(false);
      expect(new Set(browser.requested.map(interactionUid).filter(Boolean)).size).toBe(1);

      // Asking for less is covered too.
      const narrower = await startLogin(rp, { scope: 'openid' });
      const back = await decideOnWeChat(narrower, { user: panda, allow: true });
      expect(isResume(back.location as string)).toBe(true);
      const narrowTokens = await oidc.authorizationCodeGrant(
        rp,
        await continueToRp(narrower, back),
        narrower.checks,
      );
      expect(narrowTokens.scope).toBe('openid');
    });

    // Remembering is for the next login: the grant is all this one needs, so a failed write is a
    // warning, never a failed login (nor, as it was, a race between a 500 and a silent loss).
    test('a consent the database fails to remember still finishes the login, with a warning naming the client', async () => {
      const panda = await newcomer();
      const login = await startLogin(rp, { scope: 'openid profile' });
      const page = await land(login, await decideOnWeChat(login, { user: panda, allow: true }));
      expect(page.body).toContain(CONSENT_BUTTON);
      const consent = await whileStatementsFail(
        bridge.server.stores.db,
        { table: 'consents', on: 'insert', fault: 'refuse' },
        () => allow(login, page),
      );
      expect(consent.status).toBe(303);
      expect(isResume(consent.location as string)).toBe(true);
      const tokens = await oidc.authorizationCodeGrant(rp, await continueToRp(login, consent), login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
      const lines = bridge.logs.join('').split('\n');
      const warning = lines.filter((line) => line.includes('"msg":"consent not remembered'));
      expect(warning).toHaveLength(1);
      expect(JSON.parse(warning[0] as string)).toMatchObject({ level: 'warn', clientId: RP.client_id });
      expect(lines.filter((line) => line.includes('unhandled error'))).toHaveLength(0);
      // Not remembered: the next login from a fresh browser asks again.
      const later = await startLogin(rp, { scope: 'openid profile' });
      const again = await land(later, await decideOnWeChat(later, { user: panda, allow: true }));
      expect(again.body).toContain(CONSENT_BUTTON);
    });

    test('a scope not allowed before, or prompt=consent, shows the page again', async () => {
      const panda = await newcomer();
      await loginAs(rp, panda, { scope: 'openid' });

      const wider = await startLogin(rp, { scope: 'openid profile' });
      const page = await land(wider, await decideOnWeChat(wider, { user: panda, allow: true }));
      expect(page.body).toContain(CONSENT_BUTTON);
      await continueToRp(wider, page);

      const demanded = await startLogin(rp, { scope: 'openid profile', prompt: 'consent' });
      const again = await land(demanded, await decideOnWeChat(demanded, { user: panda, allow: true }));
      expect(again.body).toContain(CONSENT_BUTTON);
      const tokens = await oidc.authorizationCodeGrant(
        rp,
        await continueToRp(demanded, again),
        demanded.checks,
      );
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);

      // Both consents are remembered: the wider request passes without a page now.
      const later = await startLogin(rp, { scope: 'openid profile' });
      expect(isResume((await decideOnWeChat(later, { user: panda, allow: true })).location as string)).toBe(
        true,
      );
    });

    test('a page demanded with prompt=consent for what is remembered changes nothing remembered; a new scope is added', async () => {
      const panda = await newcomer();
      await loginAs(rp, panda, { scope: 'openid' });
      const { db } = bridge.server.stores;
      const remembered = () =>
        db
          .selectFrom('consents')
          .innerJoin('accounts', 'accounts.id', 'consents.account_id')
          .select(['consents.scopes', 'consents.updated_at'])
          .where('accounts.subject', '=', panda.unionid)
          .where('consents.client_id', '=', RP.client_id)
          .executeTakeFirstOrThrow();
      const before = await remembered();
      expect(before.scopes).toEqual(['openid']);

      const demanded = await startLogin(rp, { scope: 'openid', prompt: 'consent' });
      const page = await land(demanded, await decideOnWeChat(demanded, { user: panda, allow: true }));
      expect(page.body).toContain(CONSENT_BUTTON);
      const tokens = await oidc.authorizationCodeGrant(
        rp,
        await continueToRp(demanded, page),
        demanded.checks,
      );
      expect(tokens.scope).toBe('openid');
      // Allowed again, with nothing new: the row was not written.
      expect(await remembered()).toEqual(before);

      // A demanded page that also asks for a new scope remembers it.
      const wider = await startLogin(rp, { scope: 'openid profile', prompt: 'consent' });
      const widerPage = await land(wider, await decideOnWeChat(wider, { user: panda, allow: true }));
      await continueToRp(wider, widerPage);
      const after = await remembered();
      expect(after.scopes).toEqual(['openid', 'profile']);
      expect(after.updated_at.getTime()).toBeGreaterThan(before.updated_at.getTime());
    });

    test("a logged-in browser asked for a scope allowed at another browser's login gets no consent prompt", async () => {
      const panda = await newcomer();
      await loginAs(rp, panda, { scope: 'openid profile' });
      // Another browser logs in asking less, so its session's grant lacks profile.
      const login = await startLogin(rp, { scope: 'openid' });
      await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));

      const wider = await authorizationRequest(rp, { scope: 'openid profile' });
      const back = await login.browser.follow(wider.url.href, { stopAt: RP.redirect_uris[0] });
      expect(back.location?.startsWith(RP.redirect_uris[0] as string)).toBe(true);
      const tokens = await oidc.authorizationCodeGrant(rp, new URL(back.location as string), wider.checks);
      expect(tokens.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
    });

    test("one person's consent is not another's", async () => {
      const panda = await newcomer();
      const tiger = await newcomer('🐯 老虎 Tiger');
      await loginAs(rp, panda, { scope: 'openid profile' });
      const login = await startLogin(rp, { scope: 'openid profile' });
      const page = await land(login, await decideOnWeChat(login, { user: tiger, allow: true }));
      expect(page.body).toContain(CONSENT_BUTTON);
    });
  });
}
