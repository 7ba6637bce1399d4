import { createHash } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { claimCode, codeDigest } from '../../src/interaction/callback-claims.ts';
import { createStateSigner, markStateUsed } from '../../src/interaction/wechat-state.ts';
import {
  type Bridge,
  bridgeCookieKeys,
  logLines,
  RP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  UNBOUND_APP,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { attributeOf, TestBrowser } from '../helpers/browser.ts';
import {
  authorizationRequest,
  callbackFromWeChat,
  consentAction,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  injectFault,
  interactionUid,
  loginAs,
  loginStarted,
  pendingFaults,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { sessionIdOf } from '../helpers/recent-login.ts';

/** What the client hears after the person presses "return to the application" on an error page. */
async function abortFromPage(
  login: Awaited<ReturnType<typeof startLogin>>,
  page: { body: string; url: string },
) {
  const reason = page.body.match(/name="reason" value="([^"]+)"/)?.[1];
  const uid = new URL(page.url).pathname.split('/')[2];
  const hop = await login.browser.follow(`${new URL(page.url).origin}/interaction/${uid}/abort`, {
    method: 'POST',
    form: { reason: reason ?? '' },
    stopAt: RP.redirect_uris[0],
  });
  return new URL(hop.location ?? 'about:blank');
}

for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`website QR login through the sandbox (${storage})`, () => {
    let bridge: Bridge;
    let rp: oidc.Configuration;
    let panda: SandboxUser;
    /** Every code, token and secret seen, to search the logs for at the end. */
    const secretsSeen = new Set<string>([RP.client_secret, WEBSITE_APP.secret, UNBOUND_APP.secret]);

    beforeAll(async () => {
      bridge = await startBridge({ storage });
      rp = await relyingParty(bridge);
      panda = await createSandboxUser(bridge, '🐼 熊猫 Panda');
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test('the ID token sub is the unionid, with the nickname and avatar under the profile scope', async () => {
      const { tokens, redirect } = await loginAs(rp, panda);
      secretsSeen.add(redirect.searchParams.get('code') ?? '');
      secretsSeen.add(tokens.access_token);
      const claims = tokens.claims();
      expect(claims?.sub).toBe(panda.unionid);
      expect(claims?.iss).toBe(bridge.url);
      expect(claims?.aud).toBe(RP.client_id);
      // Discovery says the OP passes sid (backchannel_logout_session_supported): every ID token
      // names its session, whether or not the client registered back-channel logout.
      expect(claims?.sid).toEqual(expect.any(String));

      const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, panda.unionid);
      expect(userinfo.sub).toBe(panda.unionid);
      expect(userinfo.nickname).toBe('🐼 熊猫 Panda');
      expect(userinfo.name).toBe('🐼 熊猫 Panda');
      expect(userinfo.picture).toMatch(/^https?:\/\//);
    });

    test("a finished login's page, reached again (Back, a reload), leads on to the resume, not to a QR code", async () => {
      const { login } = await loginAs(rp, panda);
      const again = await login.browser.request(login.interactionUrl);
      expect(again.body).not.toContain('id="wechat-qr"');
      expect(again.location).toBe(`${bridge.url}/auth/${interactionUid(login)}`);
      // The resume was used: the person reads that this login is over.
      const resume = await login.browser.request(new URL(again.location as string, bridge.url).href);
      expect(resume.status).toBe(400);
      expect(resume.body).toContain('登录已超时或页面已失效');
    });

    test('the authorization request answers with the login page itself, its links on the interaction', async () => {
      const browser = new TestBrowser();
      const { url } = await authorizationRequest(rp);
      const page = await browser.request(url.href);
      expect(page.status).toBe(200);
      expect(page.location).toBeUndefined();
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.headers.get('cache-control')).toContain('no-store');
      expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      const login = loginStarted(browser, { expectedState: '' }, page);
      const uid = interactionUid(login);
      // The interaction's cookie is set for its own path, where the callback and cancel are posted.
      expect(page.headers.getSetCookie().some((c) => c.includes(`path=/interaction/${uid}`))).toBe(true);
      expect(page.body).toContain(`action="/interaction/${uid}/abort"`);
      expect(page.body).toContain(`href="/interaction/${uid}?lang=en"`);
      // The language switch shows the same interaction's page, in English.
      const english = await browser.request(`${bridge.url}/interaction/${uid}?lang=en`);
      expect(english.status).toBe(200);
      expect(english.body).toContain('<html lang="en">');
      expect(english.body).toContain(`action="/interaction/${uid}/abort"`);
    });

    test("a browser already logged in and asked for more gets the consent page on the interaction's own URL", async () => {
      const { login } = await loginAs(rp, panda, { scope: 'openid' });
      const wider = await authorizationRequest(rp, { scope: 'openid profile', prompt: 'consent' });
      const answer = await login.browser.request(wider.url.href);
      expect(answer.status).toBe(303);
      expect(new URL(answer.location as string).pathname).toMatch(/^\/interaction\/[^/]+$/);
    });

    test('the same person keeps the same sub on a later login, and another person gets another', async () => {
      const first = await loginAs(rp, panda);
      const other = await createSandboxUser(bridge, '张三');
      const second = await loginAs(rp, other);
      expect(first.tokens.claims()?.sub).toBe(panda.unionid);
      expect(second.tokens.claims()?.sub).toBe(other.unionid);
      expect(other.unionid).not.toBe(panda.unionid);
    });

    test('updated_at tells when the profile last changed on WeChat, not when the person last logged in', async () => {
      const person = await createSandboxUser(bridge, '李四');
      await loginAs(rp, person);
      // An earlier change, as if the account had been made a day ago.
      const dayAgo = new Date(Date.now() - 86_400_000);
      await bridge.server.stores.db
        .updateTable('accounts')
        .set({ profile_updated_at: dayAgo })
        .where('subject', '=', person.unionid)
        .execute();
      const updatedAt = async () => {
        const { tokens } = await loginAs(rp, person);
        const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, person.unionid);
        return userinfo.updated_at;
      };
      expect(await updatedAt()).toBe(Math.floor(dayAgo.getTime() / 1000));

      const renamed = await fetch(`${bridge.sandboxUrl}/sandbox/users/${person.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nickname: '李四 2' }),
      });
      expect(renamed.status).toBe(200);
      const before = Math.floor(Date.now() / 1000);
      expect(await updatedAt()).toBeGreaterThanOrEqual(before);
    });

    test('a WeChat nickname holding control characters (NUL, BEL) logs in, the name without them', async () => {
      const person = await createSandboxUser(bridge, 'A\u0000B\u0007C', { allowControlCharacters: true });
      expect(person.nickname).toBe('A\u0000B\u0007C');
      // The first login creates the account; the second takes the returning person's one statement.
      for (let i = 0; i < 2; i++) {
        const { tokens } = await loginAs(rp, person);
        expect(tokens.claims()?.sub).toBe(person.unionid);
        const userinfo = await oidc.fetchUserInfo(rp, tokens.access_token, person.unionid);
        expect(userinfo.name).toBe('ABC');
        expect(userinfo.nickname).toBe('ABC');
      }
    });

    test("WeChat's placeholder profile (微信用户, no avatar) is no name: the claims leave it out until a real one comes", async () => {
      const person = await createSandboxUser(bridge, '微信用户', { avatarColor: null });
      const first = await loginAs(rp, person);
      const userinfo = await oidc.fetchUserInfo(rp, first.tokens.access_token, person.unionid);
      expect(userinfo.sub).toBe(person.unionid);
      expect(userinfo.updated_at).toEqual(expect.any(Number));
      for (const claims of [userinfo, first.tokens.claims()]) {
        expect(claims).not.toHaveProperty('name');
        expect(claims).not.toHaveProperty('nickname');
        expect(claims).not.toHaveProperty('picture');
      }
      // Kept with the account all the same, and replaced by the real name once WeChat gives one.
      const account = await bridge.server.stores.db
        .selectFrom('accounts')
        .select('nickname')
        .where('subject', '=', person.unionid)
        .executeTakeFirstOrThrow();
      expect(account.nickname).toBe('微信用户');
      const renamed = await fetch(`${bridge.sandboxUrl}/sandbox/users/${person.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ nickname: '王五' }),
      });
      expect(renamed.status).toBe(200);
      const later = await loginAs(rp, person);
      const named = await oidc.fetchUserInfo(rp, later.tokens.access_token, person.unionid);
      expect(named).toMatchObject({ name: '王五', nickname: '王五' });
    });

    test('refresh rotates the refresh token, and reusing a rotated-out one revokes the grant', async () => {
      const { tokens } = await loginAs(rp, panda, {
        scope: 'openid profile offline_access',
        prompt: 'consent',
      });
      expect(tokens.refresh_token).toBeTruthy();
      secretsSeen.add(tokens.refresh_token ?? '');

      const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
      expect(refreshed.claims()?.sub).toBe(panda.unionid);
      // The same session as the login's ID token (OIDC Core 12.2 keeps what identifies it).
      expect(refreshed.claims()?.sid).toBe(tokens.claims()?.sid);
      expect(refreshed.claims()?.auth_time).toBe(tokens.claims()?.auth_time);
      expect(refreshed.refresh_token).toBeTruthy();
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      expect((await oidc.tokenIntrospection(rp, refreshed.refresh_token as string)).active).toBe(true);

      // Someone replays the old refresh token: refused, and every token of the grant dies with it.
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token as string)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      expect((await oidc.tokenIntrospection(rp, refreshed.refresh_token as string)).active).toBe(false);
      expect((await oidc.tokenIntrospection(rp, refreshed.access_token)).active).toBe(false);
    });

    test('token responses, and token errors, say no-store and Pragma: no-cache (RFC 6749 5.1, 5.2)', async () => {
      const { tokens } = await loginAs(rp, panda, { scope: 'openid offline_access', prompt: 'consent' });
      secretsSeen.add(tokens.refresh_token ?? '');
      const refresh = () =>
        fetch(`${bridge.url}/token`, {
          method: 'POST',
          headers: {
            authorization: `Basic ${Buffer.from(`${RP.client_id}:${RP.client_secret}`).toString('base64')}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({
            grant_type: 'refresh_token',
            refresh_token: tokens.refresh_token as string,
          }),
        });
      const answered = await refresh();
      expect(answered.status).toBe(200);
      secretsSeen.add(((await answered.json()) as { refresh_token: string }).refresh_token);
      const refused = await refresh();
      expect(refused.status).toBe(400);
      for (const answer of [answered, refused]) {
        expect(answer.headers.get('cache-control')).toBe('no-store');
        expect(answer.headers.get('pragma')).toBe('no-cache');
      }
    });

    test('introspection and revocation work, and RP-initiated logout ends the session', async () => {
      const { tokens, login } = await loginAs(rp, panda, {
        scope: 'openid profile offline_access',
        prompt: 'consent',
      });
      const active = await oidc.tokenIntrospection(rp, tokens.access_token);
      expect(active.active).toBe(true);
      expect(active.sub).toBe(panda.unionid);
      expect(active.client_id).toBe(RP.client_id);
      await oidc.tokenRevocation(rp, tokens.access_token);
      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
      await expect(oidc.fetchUserInfo(rp, tokens.access_token, panda.unionid)).rejects.toMatchObject({
        status: 401,
        cause: [
          expect.objectContaining({
            scheme: 'bearer',
            parameters: expect.objectContaining({ error: 'invalid_token' }),
          }),
        ],
      });

      // RP-initiated logout: the logout page, confirmed, sends the browser to post_logout_redirect_uri.
      const endSession = oidc.buildEndSessionUrl(rp, {
        id_token_hint: tokens.id_token as string,
        post_logout_redirect_uri: RP.post_logout_redirect_uris?.[0] as string,
      });
      const logoutPage = await login.browser.follow(endSession.href);
      expect(logoutPage.body).toContain('id="logout-yes"');
      // It names the application that asked (by its id_token_hint), not this server's host.
      expect(logoutPage.body).toContain(`<p id="logout-client">“${RP.client_name}”请你退出登录。</p>`);
      // Each button says what it does: "no" still logs out of the application that asked (the
      // engine revokes its grant), only the others stay logged in.
      expect(logoutPage.body).toContain(
        '<p id="logout-question">是否同时退出此浏览器上用微信登录的其他应用？</p>',
      );
      expect(logoutPage.body).toMatch(/<button id="logout-yes"[^>]*>全部退出<\/button>/);
      expect(logoutPage.body).toMatch(
        new RegExp(`<button id="logout-no"[^>]*>只退出“${RP.client_name}”</button>`),
      );
      // Before the choice: "only" keeps this browser's login here, so the application's next
      // request logs straight back in (a relying-party developer's review read it as a full logout).
      expect(logoutPage.body).toContain(
        `<p id="logout-only-hint" class="muted small">只退出“${RP.client_name}”时，此浏览器仍保持微信登录：再次登录无需扫码。在公用电脑上，请全部退出。</p>`,
      );
      const xsrf = logoutPage.body.match(/name="xsrf" value="([^"]+)"/)?.[1];
      const done = await login.browser.request(`${bridge.url}/session/end/confirm`, {
        form: { xsrf: xsrf ?? '', logout: 'yes' },
      });
      expect(done.location).toMatch(/^https:\/\/rp\.example\.test\/logged-out/);
      // The session is gone: a new authorization request asks the person to log in again.
      const again = await startLogin(rp, { browser: login.browser });
      expect(again.loginPage.body).toContain('id="wechat-qr"');
    });

    test('a logout request the server cannot honour still lets a logged-in person log out of this browser', async () => {
      const { login } = await loginAs(rp, panda);
      // An id_token_hint it cannot verify (signed by a key since retired, in an operator's review).
      const page = { headers: { accept: 'text/html' } };
      const refused = await login.browser.request(`${bridge.url}/session/end?id_token_hint=garbage`, page);
      expect(refused.status).toBe(400);
      expect(refused.body).toContain('<h1>退出未完成</h1>');
      const href = refused.body.match(
        /<a class="button" id="logout-anyway" href="([^"]+)">仍然退出此浏览器上的微信登录<\/a>/,
      )?.[1];
      expect(href).toBe('/session/end?ui_locales=zh-CN');
      // The way out asks first, as any logout without an application's request does.
      const asked = await login.browser.request(`${bridge.url}${href}`);
      expect(asked.body).toContain('<p id="logout-question">要退出此浏览器上用微信登录的所有应用吗？</p>');
      const xsrf = asked.body.match(/name="xsrf" value="([^"]+)"/)?.[1] ?? '';
      await login.browser.request(`${bridge.url}/session/end/confirm`, { form: { xsrf, logout: 'yes' } });
      const again = await startLogin(rp, { browser: login.browser });
      expect(again.loginPage.body).toContain('id="wechat-qr"');
      // A browser without a session is offered nothing to log out of.
      const stranger = await new TestBrowser().request(
        `${bridge.url}/session/end?id_token_hint=garbage`,
        page,
      );
      expect(stranger.body).toContain('<h1>退出未完成</h1>');
      expect(stranger.body).not.toContain('id="logout-anyway"');
    });

    test('the page after a logout without post_logout_redirect_uri says whether only the asking application was logged out', async () => {
      const { login } = await loginAs(rp, panda);
      const confirm = async (query: string, logout?: 'yes') => {
        const page = await login.browser.request(`${bridge.url}/session/end?${query}`);
        const xsrf = page.body.match(/name="xsrf" value="([^"]+)"/)?.[1] ?? '';
        const done = await login.browser.request(`${bridge.url}/session/end/confirm`, {
          form: { xsrf, ...(logout && { logout }) },
        });
        return (await login.browser.follow(new URL(done.location as string, bridge.url).href)).body;
      };
      // "Only {client}": the engine ends that client's part and keeps the session; the page says so.
      const only = await confirm(`client_id=${RP.client_id}`);
      expect(only).toContain(
        `<p id="logged-out">你已退出“${RP.client_name}”。此浏览器仍保持微信登录：“${RP.client_name}”和其他应用可以不扫码再次登录。</p>`,
      );
      // The browser's session lives on: a silent request of the same application gets a code.
      const silent = await authorizationRequest(rp, { prompt: 'none' });
      const still = await login.browser.follow(silent.url.href, { stopAt: RP.redirect_uris[0] as string });
      expect(new URL(still.location as string).searchParams.get('code')).toBeTruthy();
      // "All": the session ends, and the page says the person is logged out, naming no application.
      const all = await confirm(`client_id=${RP.client_id}`, 'yes');
      expect(all).toContain('<p id="logged-out">你已退出登录。现在可以关闭此页面。</p>');
      // The page's address, opened by a browser without a session (a link anyone may send), does
      // not claim that other applications stay logged in.
      for (const browser of [login.browser, new TestBrowser()]) {
        const opened = await browser.request(`${bridge.url}/session/end/success?client_id=${RP.client_id}`);
        expect(opened.body).toContain('<p id="logged-out">你已退出登录。现在可以关闭此页面。</p>');
      }
      const again = await startLogin(rp, { browser: login.browser });
      expect(again.loginPage.body).toContain('id="wechat-qr"');
    });

    test("HEAD of an authorization request answers with the login page's status and headers, as GET does (RFC 9110 9.3.2)", async () => {
      const { url } = await authorizationRequest(rp);
      const [head, get] = await Promise.all(
        ['HEAD', 'GET'].map((method) => fetch(url, { method, redirect: 'manual' })),
      );
      expect(get?.status).toBe(200);
      expect(head?.status).toBe(200);
      expect(head?.headers.get('content-type')).toBe(get?.headers.get('content-type'));
      expect(head?.headers.get('cache-control')).toBe('no-store');
      expect(await head?.text()).toBe('');
      expect(await get?.text()).toContain('id="wechat-qr"');
    });

    test('authorization and logout requests POSTed as forms (OIDC Core 3.1.2.1, RP-Initiated Logout 2) go on as their GETs', async () => {
      const browser = new TestBrowser();
      const { url, checks } = await authorizationRequest(rp);
      const posted = await browser.request(`${bridge.url}/auth`, {
        form: Object.fromEntries(url.searchParams),
      });
      expect(posted.status).toBe(303);
      expect(posted.headers.get('cache-control')).toBe('no-store');
      // The same endpoint, the body's parameters as the query: the login page, then a code for its state.
      const target = new URL(posted.location as string, bridge.url);
      expect(target.pathname).toBe('/auth');
      expect(Object.fromEntries(target.searchParams)).toEqual(Object.fromEntries(url.searchParams));
      const login = loginStarted(browser, checks, await browser.follow(target.href));
      const redirect = await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);

      // The logout button of a relying party that posts its id_token_hint: the confirmation page.
      const logout = await browser.request(`${bridge.url}/session/end`, {
        form: {
          id_token_hint: tokens.id_token as string,
          post_logout_redirect_uri: RP.post_logout_redirect_uris?.[0] as string,
        },
      });
      expect(logout.status).toBe(303);
      const logoutPage = await browser.follow(new URL(logout.location as string, bridge.url).href);
      expect(logoutPage.body).toContain(`<p id="logout-client">“${RP.client_name}”请你退出登录。</p>`);

      // Only a form: anything else a browser's form does not send is refused, saying what is taken.
      const json = await fetch(`${bridge.url}/auth`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/html' },
        body: JSON.stringify(Object.fromEntries(url.searchParams)),
      });
      expect(json.status).toBe(415);
      expect(json.headers.get('accept-post')).toBe('application/x-www-form-urlencoded');
      expect(await json.text()).toContain('无法处理此请求');
    });

    test("the form that ends the previous person's session is our page, in the language the request asked for (ui_locales)", async () => {
      const first = await loginAs(rp, panda);
      const other = await createSandboxUser(bridge, 'Someone else');
      // The browser prefers Chinese (Accept-Language); the application asked for English.
      const choice = await startLogin(rp, {
        browser: first.login.browser,
        prompt: 'select_account',
        extra: { ui_locales: 'en' },
      });
      let hop = await decideOnWeChat(choice, { user: other, allow: true });
      for (let i = 0; i < 5 && !hop.body.includes('id="op.formPost"'); i++) {
        const allow = consentAction(hop);
        hop = allow
          ? await choice.browser.request(allow, { method: 'POST', form: {} })
          : await choice.browser.request(hop.location as string);
      }
      expect(hop.url).toMatch(/\/auth\/[^/?]+$/);
      expect(hop.body).toContain('<html lang="en">');
      expect(hop.body).toContain('<title>Continuing…</title>');
      expect(hop.body).toContain('<meta name="viewport"');
      expect(hop.body).toContain('href="/assets/app.css"');
      expect(hop.body).toContain('id="form-post-continue"');
      // Its script runs under the page's policy: the policy names its hash.
      const script = /<script>([\s\S]*?)<\/script>/.exec(hop.body)?.[1] as string;
      const digest = createHash('sha256').update(script).digest('base64');
      expect(hop.headers.get('content-security-policy')).toContain(`'sha256-${digest}'`);
      // No language switch: its URL, the resume, is not a page to load again.
      expect(hop.body).not.toContain('id="lang-switch"');
      const redirect = await continueToRp(choice, hop);
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, choice.checks);
      expect(tokens.claims()?.sub).toBe(other.unionid);
    });

    test("prompt=select_account gets the login page in a browser with a session, and whoever scans becomes the session's person", async () => {
      const first = await loginAs(rp, panda);
      expect(first.tokens.claims()?.sub).toBe(panda.unionid);
      const other = await createSandboxUser(bridge, 'Another Account');
      // The same browser: its session would answer at once, but the client asked for a choice.
      const choice = await startLogin(rp, { browser: first.login.browser, prompt: 'select_account' });
      expect(choice.loginPage.body).toContain('id="wechat-qr"');
      const redirect = await continueToRp(choice, await decideOnWeChat(choice, { user: other, allow: true }));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, choice.checks);
      expect(tokens.claims()?.sub).toBe(other.unionid);
      // The session is now the chosen person's: the next request without a prompt logs them in at once.
      const { url, checks } = await authorizationRequest(rp);
      const sso = await first.login.browser.follow(url.href, { stopAt: RP.redirect_uris[0] as string });
      const again = await oidc.authorizationCodeGrant(rp, new URL(sso.location as string), checks);
      expect(again.claims()?.sub).toBe(other.unionid);
    });

    test('an authorization code redeemed by 8 parallel requests yields exactly one token set', async () => {
      const login = await startLogin(rp);
      const redirect = await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => oidc.authorizationCodeGrant(rp, redirect, login.checks)),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(ok).toHaveLength(1);
      expect(failed).toHaveLength(7);
      for (const f of failed) expect(f.reason).toMatchObject({ error: 'invalid_grant' });
    });

    test('a rotated refresh token redeemed by 8 parallel requests yields exactly one new token set', async () => {
      const { tokens } = await loginAs(rp, panda, {
        scope: 'openid offline_access',
        prompt: 'consent',
      });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, () => oidc.refreshTokenGrant(rp, tokens.refresh_token as string)),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
        expect(r.reason).toMatchObject({ error: 'invalid_grant' });
      }
    });

    test('declining on WeChat shows a page to try again, and giving up sends access_denied to the client', async () => {
      const login = await startLogin(rp);
      const page = await decideOnWeChat(login, { user: panda, allow: false });
      expect(page.status).toBe(400);
      expect(page.body).toContain('你已拒绝微信授权');
      expect(page.body).toContain('id="try-again"');
      const redirect = await abortFromPage(login, page);
      expect(redirect.searchParams.get('error')).toBe('access_denied');
      expect(redirect.searchParams.get('state')).toBe(login.checks.expectedState);
    });

    test('a replayed callback (same code and state) logs nobody in', async () => {
      const login = await startLogin(rp);
      const first = await decideOnWeChat(login, { user: panda, allow: true });
      expect(first.status).toBe(303);
      // Replay the exact callback in a fresh browser that started its own interaction.
      const attacker = await startLogin(rp);
      const replayUrl = new URL(first.url);
      const attackerUid = interactionUid(attacker);
      replayUrl.pathname = `/interaction/${attackerUid}/wechat-callback`;
      const replay = await attacker.browser.request(replayUrl.href);
      expect(replay.status).toBe(400);
      expect(replay.body).toContain('此登录链接已失效或已被使用');
      // The same browser delivering its own callback again (as WeChat's browser may) is sent where the
      // first delivery sent it: the code is not exchanged again and no second login happens.
      const again = await login.browser.request(first.url);
      expect(again.status).toBe(303);
      expect(again.location).toBe(first.location);
    });

    test("another person's code brought with the attacker's own valid state logs nobody in", async () => {
      const victim = await startLogin(rp);
      const victimCallback = await callbackFromWeChat(victim, { user: panda, allow: true });
      // The victim's login goes on (to the consent page, answered here or redirected to).
      const delivered = await victim.browser.request(victimCallback.href);
      expect(delivered.status).toBeLessThan(400);
      // The attacker's own login, its own state (a state its interaction issued, so it reads as
      // valid), and the victim's code, already claimed and settled for the victim's interaction.
      const attacker = await startLogin(rp);
      const replay = new URL(`${bridge.url}/interaction/${interactionUid(attacker)}/wechat-callback`);
      replay.searchParams.set('code', victimCallback.searchParams.get('code') as string);
      replay.searchParams.set('state', attacker.qrUrl.searchParams.get('state') as string);
      const answer = await attacker.browser.request(replay.href);
      expect(answer.status).toBe(400);
      expect(answer.location).toBeUndefined();
      expect(answer.body).toContain('此登录链接已失效或已被使用');
    });

    test('a state the person declined with is used up: a code brought with it later logs nobody in', async () => {
      const login = await startLogin(rp);
      const declined = await decideOnWeChat(login, { user: panda, allow: false });
      expect(declined.status).toBe(400);
      expect(declined.body).toContain('你已拒绝微信授权');
      // The same trip to WeChat (same state) now comes back with a code.
      const allowed = await decideOnWeChat(login, { user: panda, allow: true });
      expect(allowed.status).toBe(400);
      expect(allowed.location).toBeUndefined();
      expect(allowed.body).toContain('此登录链接已失效或已被使用');
    });

    test('a login whose first callback died after claiming the code completes when the browser reloads', async () => {
      const login = await startLogin(rp);
      const callbackUrl = await callbackFromWeChat(login, { user: panda, allow: true });
      const code = callbackUrl.searchParams.get('code') as string;
      const uid = interactionUid(login);
      // What an instance killed mid-callback leaves behind: the code claimed, the state used, no outcome.
      const { kv } = bridge.server.stores;
      expect(await claimCode(kv, WEBSITE_APP.appid, code, uid, 600)).toBe(true);
      const state = callbackUrl.searchParams.get('state') as string;
      expect(await markStateUsed(kv, state, 600, codeDigest(WEBSITE_APP.appid, code))).toBe(true);

      const reload = await login.browser.request(callbackUrl.href);
      expect(reload.status).toBe(303);
      const tokens = await oidc.authorizationCodeGrant(rp, await continueToRp(login, reload), login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
    });

    test('of two deliveries of one callback at once, the one claiming the code logs the person in even when the other took the state first', async () => {
      const login = await startLogin(rp);
      const callbackUrl = await callbackFromWeChat(login, { user: panda, allow: true });
      const code = callbackUrl.searchParams.get('code') as string;
      const state = callbackUrl.searchParams.get('state') as string;
      // The other delivery's half of the round trip landed first: the state marked by this very code.
      const { kv } = bridge.server.stores;
      expect(await markStateUsed(kv, state, 600, codeDigest(WEBSITE_APP.appid, code))).toBe(true);

      const delivery = await login.browser.request(callbackUrl.href);
      expect(delivery.status).toBe(303);
      const tokens = await oidc.authorizationCodeGrant(rp, await continueToRp(login, delivery), login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
    });

    test('a second code for a state another code has used logs nobody in', async () => {
      const login = await startLogin(rp);
      const callbackUrl = await callbackFromWeChat(login, { user: panda, allow: true });
      const state = callbackUrl.searchParams.get('state') as string;
      const { kv } = bridge.server.stores;
      expect(await markStateUsed(kv, state, 600, codeDigest(WEBSITE_APP.appid, 'another-code'))).toBe(true);

      const delivery = await login.browser.request(callbackUrl.href);
      expect(delivery.status).toBe(400);
      expect(delivery.body).toContain('此登录链接已失效或已被使用');
    });

    test('a forged state, or none, logs nobody in', async () => {
      const login = await startLogin(rp);
      const uid = interactionUid(login);
      for (const query of ['?code=forged-code&state=forged-state-0123456789', '?code=forged-code']) {
        const hop = await login.browser.request(`${bridge.url}/interaction/${uid}/wechat-callback${query}`);
        expect(hop.status).toBe(400);
        expect(hop.location).toBeUndefined();
      }
    });

    test('a state naming the website app as an official account is completed by no app: the app-configuration page, no account', async () => {
      const person = await createSandboxUser(bridge, '错配 Mismatch');
      const login = await startLogin(rp);
      const uid = interactionUid(login);
      const callback = await callbackFromWeChat(login, { user: person, allow: true });
      // Signed with the bridge's own keys, for this interaction: genuine, but of another login kind
      // than the app it names is configured as.
      const state = createStateSigner(await bridgeCookieKeys(bridge)).issue({
        uid,
        kind: 'official_account',
        appid: WEBSITE_APP.appid,
        scope: 'snsapi_userinfo',
      });
      callback.searchParams.set('state', state);
      const answer = await login.browser.request(callback.href);
      // The app-configuration page, a server error (our configuration), as for WeChat's own 40125.
      expect(answer.status).toBe(500);
      expect(answer.location).toBeUndefined();
      expect(answer.body).toContain('微信应用配置有误');
      expect(bridge.logs.join('')).toContain('wechat callback for an app that is no longer configured');
      const accounts = await bridge.server.stores.db
        .selectFrom('accounts')
        .select('id')
        .where('subject', '=', person.unionid)
        .execute();
      expect(accounts).toEqual([]);
    });

    test('a callback without the interaction cookie gets the friendly start-again page', async () => {
      const login = await startLogin(rp);
      const callback = login.qrUrl.searchParams.get('redirect_uri') as string;
      const stranger = new TestBrowser();
      const hop = await stranger.request(
        `${callback}?code=abc&state=${login.qrUrl.searchParams.get('state')}`,
      );
      expect(hop.status).toBe(400);
      expect(hop.body).toContain('登录已超时或页面已失效');
    });

    test.each([
      {
        name: 'the code was already used (40163)',
        fault: { errcode: 40163 },
        text: '微信授权码无效或已过期',
        status: 400,
        error: 'server_error',
      },
      {
        name: 'WeChat answers busy (-1) after spending the code, so its retry meets 40163',
        fault: { errcode: -1, afterProcessing: true },
        text: '微信服务暂时不可用',
        status: 503,
        error: 'temporarily_unavailable',
      },
      {
        name: 'WeChat is rate limiting (45011)',
        fault: { errcode: 45011 },
        text: '请求过于频繁',
        status: 503,
        error: 'temporarily_unavailable',
      },
      {
        name: 'WeChat is down (HTTP 502)',
        fault: { httpStatus: 502 },
        text: '微信服务暂时不可用',
        status: 503,
        error: 'temporarily_unavailable',
      },
      {
        name: 'WeChat answers an empty body',
        fault: { emptyBody: true },
        text: '微信服务暂时不可用',
        status: 503,
        error: 'temporarily_unavailable',
      },
      {
        name: 'WeChat is slower than the timeout',
        fault: { delayMs: 2500 },
        text: '微信服务暂时不可用',
        status: 503,
        error: 'temporarily_unavailable',
      },
      {
        name: 'the AppSecret is wrong (40125)',
        fault: { errcode: 40125 },
        text: '微信应用配置有误',
        status: 500,
        error: 'server_error',
      },
      {
        name: 'WeChat answers an errcode it does not document for this call (40002)',
        fault: { errcode: 40002 },
        text: '出了点问题',
        status: 502,
        error: 'server_error',
      },
    ])(
      'when $name the person gets a readable page and the client $error',
      async ({ fault, text, status, error }) => {
        const login = await startLogin(rp);
        await injectFault(bridge, { api: 'sns/oauth2/access_token', times: 1, ...fault });
        const page = await decideOnWeChat(login, { user: panda, allow: true });
        expect(page.status).toBe(status);
        expect(page.body).toContain(text);
        const redirect = await abortFromPage(login, page);
        expect(redirect.searchParams.get('error')).toBe(error);
      },
    );

    test('a busy answer (-1) to the code exchange is retried once, as WeChat documents, and the login completes', async () => {
      const login = await startLogin(rp);
      await injectFault(bridge, { api: 'sns/oauth2/access_token', times: 1, errcode: -1 });
      const redirect = await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
      expect(await pendingFaults(bridge, 'sns/oauth2/access_token')).toBe(0);
    });

    // The profile is a nicety once the token names the unionid: the login goes on without it
    // (sns-identity.ts), and the log says it is missing and why, never the token, code or openid.
    test.each([
      { name: 'an errcode (40001)', fault: { errcode: 40001, times: 1 }, said: { errcode: 40001 } },
      {
        name: 'WeChat down (HTTP 502, retried once)',
        fault: { httpStatus: 502, times: 2 },
        said: { failure: 'unavailable', detail: 'HTTP 502' },
      },
    ])(
      'a profile read failing with $name is one warning naming the app and why, and the login goes on',
      async ({ fault, said }) => {
        const warnings = () => logLines(bridge, { text: '"msg":"WeChat profile not read' });
        const before = warnings().length;
        const person = await createSandboxUser(bridge, '无资料 No profile');
        const login = await startLogin(rp);
        await injectFault(bridge, { api: 'sns/userinfo', ...fault });
        const callback = await callbackFromWeChat(login, { user: person, allow: true });
        const redirect = await continueToRp(login, await login.browser.request(callback.href));
        const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
        expect(tokens.claims()?.sub).toBe(person.unionid);
        expect(await pendingFaults(bridge, 'sns/userinfo')).toBe(0);
        expect(warnings()).toHaveLength(before + 1);
        const line = warnings().at(-1) as string;
        expect(JSON.parse(line)).toMatchObject({
          level: 'warn',
          appid: WEBSITE_APP.appid,
          api: 'sns/userinfo',
          ...said,
        });
        for (const secret of [person.openids[WEBSITE_APP.appid], callback.searchParams.get('code')])
          expect(line).not.toContain(secret);
        expect(line).not.toContain('access_token');
      },
    );

    test('after a failure, "try again" gives a fresh QR code and the same login completes', async () => {
      const login = await startLogin(rp);
      await injectFault(bridge, { api: 'sns/oauth2/access_token', times: 2, errcode: -1 });
      const failed = await decideOnWeChat(login, { user: panda, allow: true });
      const retryHref = failed.body.match(/id="try-again" href="([^"]+)"/)?.[1];
      expect(retryHref).toMatch(/^\/interaction\//);
      const again = await login.browser.request(new URL(retryHref as string, bridge.url).href);
      const src = attributeOf(again.body, 'wechat-qr', 'src') as string;
      expect(new URL(src).searchParams.get('state')).not.toBe(login.qrUrl.searchParams.get('state'));
      const retried = { ...login, loginPage: again, qrUrl: new URL(src) };
      const redirect = await continueToRp(
        retried,
        await decideOnWeChat(retried, { user: panda, allow: true }),
      );
      const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
      expect(tokens.claims()?.sub).toBe(panda.unionid);
    });

    test('another person than id_token_hint names is asked to scan again with that account, and giving up is login_required', async () => {
      const first = await loginAs(rp, panda);
      const hint = first.tokens.id_token as string;
      const koala = await createSandboxUser(bridge, '考拉 Koala');
      // A fresh browser (no session), so the hint is only checked against whoever logs in.
      const login = await startLogin(rp, { extra: { id_token_hint: hint } });
      const page = await decideOnWeChat(login, { user: koala, allow: true });
      expect(page.status).toBe(400);
      expect(page.body).toContain('你登录的微信账号不是应用要求的账号');
      expect(page.body).toContain('id="try-again"');
      const redirect = await abortFromPage(login, page);
      expect(redirect.searchParams.get('error')).toBe('login_required');
      expect(redirect.searchParams.get('state')).toBe(login.checks.expectedState);

      // The person the hint names logs in on the same kind of request.
      const again = await startLogin(rp, { extra: { id_token_hint: hint } });
      const tokens = await oidc.authorizationCodeGrant(
        rp,
        await continueToRp(again, await decideOnWeChat(again, { user: panda, allow: true })),
        again.checks,
      );
      expect(tokens.claims()?.sub).toBe(panda.unionid);
    });

    test('an authorization request without redirect_uri is refused on a page, not sent to the registered one', async () => {
      const { url } = await authorizationRequest(rp);
      url.searchParams.delete('redirect_uri');
      const hop = await new TestBrowser().request(url.href);
      expect(hop.status).toBe(400);
      expect(hop.location).toBeUndefined();
      expect(hop.body).toContain('redirect_uri');
    });

    test('an invalid logout request is explained as a logout, not as a login', async () => {
      const browser = { headers: { 'accept-language': 'zh-CN,zh;q=0.9', accept: 'text/html' } };
      const page = await new TestBrowser().request(
        `${bridge.url}/session/end?id_token_hint=garbage`,
        browser,
      );
      expect(page.status).toBe(400);
      // Titled for what did not happen: the logout, not "something went wrong".
      expect(page.body).toContain('<h1>退出未完成</h1>');
      expect(page.body).toContain('<title>退出未完成</title>');
      expect(page.body).toContain('退出请求有误');
      expect(page.body).not.toContain('登录');
    });

    test('ui_locales chooses the language of the logout and error pages, as discovery lists; their language switch keeps the request, never a code', async () => {
      const discovery = (await (await fetch(`${bridge.url}/.well-known/openid-configuration`)).json()) as {
        ui_locales_supported?: string[];
      };
      expect(discovery.ui_locales_supported).toEqual(['zh-CN', 'en']);
      const chinese = { headers: { 'accept-language': 'zh-CN,zh;q=0.9' } };
      const { login } = await loginAs(rp, panda);
      const logout = await login.browser.request(`${bridge.url}/session/end?ui_locales=en`, chinese);
      // A request naming no application: "no" would end nothing, then say "logged out"; there is none.
      expect(logout.body).toContain(
        '<p id="logout-question">Log out of all the applications you signed in to with WeChat in this browser?</p>',
      );
      expect(logout.body).not.toContain('id="logout-client"');
      expect(logout.body).not.toContain('id="logout-no"');
      const asked = await login.browser.request(
        `${bridge.url}/session/end?client_id=${RP.client_id}&ui_locales=en`,
        chinese,
      );
      expect(asked.body).toContain(
        'Also log out of the other applications you signed in to with WeChat in this browser?',
      );
      expect(asked.body).toMatch(/<button id="logout-yes"[^>]*>Log out of all applications<\/button>/);
      expect(asked.body).toMatch(/<button id="logout-no"[^>]*>Log out of 测试应用 Test RP only<\/button>/);
      // An invalid logout request's page, titled in English too.
      const invalid = await new TestBrowser().request(
        `${bridge.url}/session/end?id_token_hint=garbage&ui_locales=en`,
        { headers: { ...chinese.headers, accept: 'text/html' } },
      );
      expect(invalid.body).toContain('<h1>Logout not completed</h1>');
      // An unregistered redirect_uri: refused on a page, not by a redirect.
      const { url } = await authorizationRequest(rp, {
        redirectUri: 'https://elsewhere.example/callback',
        extra: { ui_locales: 'en' },
      });
      const error = await new TestBrowser().request(url.href, chinese);
      expect(error.body).toContain('login request is invalid, so the login cannot go on');
      // The engine's own words, for the application's developers, under the person's message.
      expect(error.body).toMatch(
        /<p id="error-detail"><code>invalid_redirect_uri<\/code>: <span lang="en">redirect_uri did not match/,
      );
      // Its language switch shows the same request's answer in the other language.
      // The link's own words are Chinese (中文): marked so, besides the target's hreflang.
      expect(error.body).toMatch(/<a id="lang-switch" [^>]*hreflang="zh-CN" lang="zh-CN">中文<\/a>/);
      const other = new URL(attributeOf(error.body, 'lang-switch', 'href') as string, bridge.url);
      expect(other.searchParams.get('lang')).toBe('zh-CN');
      expect(other.searchParams.get('client_id')).toBe(RP.client_id);
      const chineseError = (await new TestBrowser().request(other.href)).body;
      expect(chineseError).toContain('应用发来的登录请求有误');
      expect(chineseError).toContain('技术信息（供应用开发者参考）');
      expect(chineseError).toContain('<h1>登录未完成</h1>');

      // At WeChat's callback: declined (no code), the switch shows the same answer in English...
      const declining = await startLogin(rp);
      const declined = await decideOnWeChat(declining, { user: panda, allow: false });
      expect(declined.body).toContain('你已拒绝微信授权');
      // The person's own choice, not a fault: no error reference to report.
      expect(declined.body).not.toContain('reference-id');
      const english = await declining.browser.request(
        new URL(attributeOf(declined.body, 'lang-switch', 'href') as string, bridge.url).href,
      );
      expect(english.body).toContain('You declined the WeChat authorization');
      // ...and with a code in the URL there is none: the code is not to be written into the page.
      const failing = await startLogin(rp);
      await injectFault(bridge, { api: 'sns/oauth2/access_token', times: 1, errcode: 40125 });
      const refused = await decideOnWeChat(failing, { user: panda, allow: true });
      expect(refused.body).toContain('微信应用配置有误');
      expect(attributeOf(refused.body, 'lang-switch', 'href')).toBeUndefined();
    });

    test('a login that fails at WeChat is explained in the language of ui_locales, as its login page was', async () => {
      // The test browser says zh-CN in Accept-Language; the client asked for English.
      const declining = await startLogin(rp, { extra: { ui_locales: 'en' } });
      expect(declining.loginPage.body).toContain('lang="en"');
      const declined = await decideOnWeChat(declining, { user: panda, allow: false });
      expect(declined.body).toContain('You declined the WeChat authorization');
      const failing = await startLogin(rp, { extra: { ui_locales: 'en' } });
      await injectFault(bridge, { api: 'sns/oauth2/access_token', times: 1, errcode: 40029 });
      const refused = await decideOnWeChat(failing, { user: panda, allow: true });
      expect(refused.body).toContain('lang="en"');
      expect(refused.body).toContain('Please log in again');
    });

    test("an unknown interaction shows the friendly start-again page in the reader's language", async () => {
      const browser = new TestBrowser();
      const hop = await browser.request(`${bridge.url}/interaction/no-such-interaction`, {
        headers: { 'accept-language': 'en-US,en;q=0.9' },
      });
      expect(hop.status).toBe(400);
      expect(hop.body).toContain('This login has timed out');
    });

    test('an address nothing answers gives a browser a readable page, and an API client the plain answer', async () => {
      const page = await new TestBrowser().request(`${bridge.url}/acount`, {
        headers: { accept: 'text/html,application/xhtml+xml', 'accept-language': 'zh-CN' },
      });
      expect(page.status).toBe(404);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(page.body).toContain('<h1>页面不存在</h1>');
      expect(page.body).toContain('此页面不存在');
      // No fault to report: no error reference.
      expect(page.body).not.toContain('reference-id');
      expect(page.headers.get('content-security-policy')).toBeTruthy();
      // A path that starts as another host's link (//host, /\host) gets a language switch to this site.
      for (const path of ['//evil.example/login', '/\\evil.example/login']) {
        const lookAlike = await new TestBrowser().request(`${bridge.url}${path}`, {
          headers: { accept: 'text/html' },
        });
        expect(lookAlike.status).toBe(404);
        expect(attributeOf(lookAlike.body, 'lang-switch', 'href')).toBe('/evil.example/login?lang=en');
      }
      const api = await fetch(`${bridge.url}/acount`, { headers: { accept: 'application/json' } });
      expect(api.status).toBe(404);
      expect(api.headers.get('content-type')).not.toMatch(/html/);
    });

    test("an endpoint asked with a method it does not take answers 405 naming its methods, a browser's GET with a page", async () => {
      // oidc-provider's own routes (the token endpoint, the logout confirmation a form posts to) and ours.
      for (const [path, allow] of [
        ['/token', 'POST, OPTIONS'],
        ['/session/end/confirm', 'POST'],
        ['/account/unbind', 'POST'],
      ] as const) {
        const page = await new TestBrowser().request(`${bridge.url}${path}`, {
          headers: { accept: 'text/html,application/xhtml+xml', 'accept-language': 'en' },
        });
        expect(page.status, path).toBe(405);
        expect(page.headers.get('allow'), path).toBe(allow);
        expect(page.headers.get('content-type'), path).toMatch(/^text\/html/);
        expect(page.body, path).toContain('<h1>This page cannot be opened directly</h1>');
        expect(page.body, path).not.toContain('reference-id');
      }
      // A client: the plain answer, for the engine's routes whatever the method.
      for (const [method, path, allow] of [
        ['GET', '/token', 'POST, OPTIONS'],
        ['PUT', '/me', 'GET, HEAD, POST, OPTIONS'],
        ['DELETE', '/token/introspection', 'POST, OPTIONS'],
        ['POST', '/jwks', 'GET, HEAD, OPTIONS'],
        ['GET', '/token/', 'POST, OPTIONS'],
      ] as const) {
        const api = await fetch(`${bridge.url}${path}`, { method, headers: { accept: 'application/json' } });
        expect(api.status, `${method} ${path}`).toBe(405);
        expect(api.headers.get('allow'), `${method} ${path}`).toBe(allow);
        expect(api.headers.get('content-type'), `${method} ${path}`).not.toMatch(/html/);
      }
      // OPTIONS at an engine route that has no OPTIONS route of its own: the methods, no error.
      const options = await fetch(`${bridge.url}/session/end/confirm`, { method: 'OPTIONS' });
      expect(options.status).toBe(204);
      expect(options.headers.get('allow')).toBe('POST');
      // A path no route has is still a 404, whatever the method.
      expect((await fetch(`${bridge.url}/tokens`, { method: 'POST' })).status).toBe(404);
    });

    test("a handler's log lines name the request they were written for, as its access line and X-Request-Id do", async () => {
      const login = await startLogin(rp);
      const callback = await decideOnWeChat(login, { user: panda, allow: true });
      const requestId = callback.headers.get('x-request-id');
      expect(requestId).toBeTruthy();
      const lines = bridge.logs
        .flatMap((chunk) => chunk.split('\n'))
        .filter((line) => line.includes(requestId as string));
      const messages = lines.map((line) => JSON.parse(line) as { msg: string; requestId: string });
      // The login's line comes from the process's logger, several calls away from the request.
      expect(messages.find((line) => line.msg === 'wechat login')).toMatchObject({ requestId });
      // Once each: a field is never written twice in one line.
      for (const line of lines) expect(line.split('"requestId"').length).toBe(2);
    });

    test('no secret, code or token reached the logs', async () => {
      // A login of its own, so that this holds under -t too: WeChat's code and state, the sns tokens
      // WeChat gave the bridge for them, and every OIDC artifact the relying party got.
      const grants = bridge.sandboxState.grants;
      const exchange = grants.exchangeCode.bind(grants);
      // By code: work an earlier test left running (a delivery it held back) may exchange one too.
      const snsTokens = new Map<string, string[]>();
      grants.exchangeCode = (code, appid, now) => {
        const outcome = exchange(code, appid, now);
        if (outcome.ok) snsTokens.set(code, [outcome.value.accessToken, outcome.value.refreshToken]);
        return outcome;
      };
      let wechatCode: string;
      const seen = new Set(secretsSeen);
      let uid: string;
      try {
        const login = await startLogin(rp, { scope: 'openid profile offline_access', prompt: 'consent' });
        uid = interactionUid(login);
        const callback = await callbackFromWeChat(login, { user: panda, allow: true });
        wechatCode = callback.searchParams.get('code') as string;
        seen.add(wechatCode);
        seen.add(callback.searchParams.get('state') as string);
        const redirect = await continueToRp(login, await login.browser.request(callback.href));
        seen.add(redirect.searchParams.get('code') as string);
        const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
        await oidc.fetchUserInfo(rp, tokens.access_token, panda.unionid);
        const refreshed = await oidc.refreshTokenGrant(rp, tokens.refresh_token as string);
        for (const token of [tokens, refreshed])
          for (const value of [token.access_token, token.refresh_token, token.id_token])
            seen.add(value ?? '');
        // The session cookie's value is the session's id, as good as the login itself.
        seen.add(sessionIdOf(login.browser));
      } finally {
        Reflect.deleteProperty(grants, 'exchangeCode');
      }
      expect(snsTokens.get(wechatCode)).toHaveLength(2);
      for (const token of [...snsTokens.values()].flat()) seen.add(token);

      const text = bridge.logs.join('');
      // The login was logged (its interaction is named), just not its secrets.
      expect(text).toContain(uid);
      for (const secret of seen) if (secret) expect(text).not.toContain(secret);
    });
  });

  describe.skipIf(!available)(`an app not bound to the Open Platform (${storage})`, () => {
    let bridge: Bridge;
    beforeAll(async () => {
      bridge = await startBridge({ storage, apps: [UNBOUND_APP] });
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test('is refused with a page naming the cause, a log line for the admin, and no account', async () => {
      const rp = await relyingParty(bridge);
      const user = await createSandboxUser(bridge, 'Alice');
      const login = await startLogin(rp);
      const page = await decideOnWeChat(login, { user, allow: true });
      expect(page.status).toBe(400);
      expect(page.body).toContain('未绑定微信开放平台账号');
      expect(bridge.logs.join('')).toContain('bind this app to your WeChat Open Platform account');
      const accounts = await bridge.server.stores.db.selectFrom('accounts').select('id').execute();
      expect(accounts).toHaveLength(0);
      const redirect = await abortFromPage(login, page);
      expect(redirect.searchParams.get('error')).toBe('server_error');
    });
  });
}
