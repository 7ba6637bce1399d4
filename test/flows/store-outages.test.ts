import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type Bridge,
  logLines,
  RP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  WEBSITE_AND_MINI_PROGRAM,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import type { Hop } from '../helpers/browser.ts';
import {
  createSandboxUser,
  decideOnWeChat,
  interactionUid,
  relyingParty,
  type SandboxUser,
  type StartedLogin,
  startLogin,
} from '../helpers/flow.ts';
import {
  callMiniProgram,
  exchangeJsCode,
  JS_CODE,
  miniProgramClient,
  TOKEN_EXCHANGE,
  tokenRequest,
  wxLogin,
  wxPhoneCode,
} from '../helpers/mini-program.ts';
import { type StatementFault, whileStatementsFail } from '../helpers/statement-fault.ts';

/** What the client hears after the person presses "return to the application" on the page. */
async function returnToApplication(login: StartedLogin, page: Hop): Promise<URL> {
  const reason = /name="reason" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
  const back = await login.browser.follow(
    `${new URL(page.url).origin}/interaction/${interactionUid(login)}/abort`,
    {
      method: 'POST',
      form: { reason },
      stopAt: RP.redirect_uris[0],
    },
  );
  return new URL(back.location ?? 'about:blank');
}

/** The login's own failure page: its heading, "try again" and "return to the application". */
function expectFailurePage(login: StartedLogin, page: Hop): void {
  expect(page.body).toContain('登录未完成');
  expect(page.body).toContain('id="try-again"');
  expect(page.body).toContain(`action="/interaction/${interactionUid(login)}/abort"`);
}

// A store failing in the middle of a login (src/storage/outage.ts): the person and the mini program
// are told what to do, with a 503 when the store could not be reached, and nothing is half written.
for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  // Only PostgreSQL has a connection to drop.
  const withConnections = storage === 'postgres+redis';
  describe.skipIf(!available)(`a store failing during a login (${storage})`, () => {
    let bridge: Bridge;
    let rp: oidc.Configuration;
    let mp: oidc.Configuration;
    const db = () => bridge.server.stores.db;
    const accountOf = (user: SandboxUser) =>
      db().selectFrom('accounts').selectAll().where('subject', '=', user.unionid).executeTakeFirst();
    const linesOf = (msg: string) => logLines(bridge, { msg });
    const whileFailing = <T>(fault: StatementFault, action: () => Promise<T>) =>
      whileStatementsFail(db(), fault, action);

    beforeAll(async () => {
      bridge = await startBridge({
        storage,
        ...WEBSITE_AND_MINI_PROGRAM,
      });
      rp = await relyingParty(bridge);
      mp = await miniProgramClient(bridge);
    });
    afterAll(async () => {
      await bridge?.close();
    });

    test.skipIf(!withConnections)(
      "the database's connection dropped during the WeChat callback: the login's failure page, 503, and nothing written",
      async () => {
        const person = await createSandboxUser(bridge, '断线 Dropped');
        const login = await startLogin(rp);
        const page = await whileFailing({ table: 'identities', on: 'insert', fault: 'drop' }, () =>
          decideOnWeChat(login, { user: person, allow: true }),
        );
        expect(page.status).toBe(503);
        expectFailurePage(login, page);
        // The account the login's transaction created went with it.
        expect(await accountOf(person)).toBeUndefined();
        // A reload is a repeated delivery of the code, which repeats the first's outcome.
        const reload = await login.browser.request(page.url);
        expect(reload.status).toBe(503);
        expectFailurePage(login, reload);
        expect((await returnToApplication(login, page)).searchParams.get('error')).toBe('server_error');
        expect(linesOf('wechat login failed: a store is unavailable')).toHaveLength(1);
        expect(linesOf('unhandled error')).toHaveLength(0);
      },
    );

    test("a statement the database refuses during the WeChat callback: the login's failure page, 500", async () => {
      const person = await createSandboxUser(bridge, '拒绝 Refused');
      const login = await startLogin(rp);
      const page = await whileFailing({ table: 'identities', on: 'insert', fault: 'refuse' }, () =>
        decideOnWeChat(login, { user: person, allow: true }),
      );
      expect(page.status).toBe(500);
      expectFailurePage(login, page);
      expect(await accountOf(person)).toBeUndefined();
      expect((await returnToApplication(login, page)).searchParams.get('error')).toBe('server_error');
      const [line] = linesOf('wechat login failed');
      expect(JSON.parse(line as string)).toMatchObject({ level: 'error', appid: WEBSITE_APP.appid });
    });

    test.skipIf(!withConnections)(
      "the database's connection dropped during a token exchange: 503 temporarily_unavailable, and wx.login() again",
      async () => {
        const person = await createSandboxUser(bridge, '小程序 Dropped');
        const code = await wxLogin(bridge, person);
        const answer = await whileFailing({ table: 'identities', on: 'insert', fault: 'drop' }, () =>
          tokenRequest(bridge, {
            grant_type: TOKEN_EXCHANGE,
            subject_token: code,
            subject_token_type: JS_CODE,
          }),
        );
        expect(answer.status).toBe(503);
        expect(answer.headers.get('retry-after')).toBe('5');
        expect(answer.body.error).toBe('temporarily_unavailable');
        expect(answer.body.error_description).toContain('call wx.login() again');
        expect(await accountOf(person)).toBeUndefined();
        // What the description says works.
        const tokens = await exchangeJsCode(mp, await wxLogin(bridge, person));
        expect(tokens.claims()?.sub).toBe(person.unionid);
      },
    );

    test.skipIf(!withConnections)(
      "the database's connection dropped while binding a phone number: 503 temporarily_unavailable, and the button again",
      async () => {
        const person = await createSandboxUser(bridge, '手机 Dropped');
        const tokens = await exchangeJsCode(mp, await wxLogin(bridge, person), { scope: 'openid phone' });
        const { code } = await wxPhoneCode(bridge, person);
        const answer = await whileFailing({ table: 'accounts', on: 'update', fault: 'drop' }, () =>
          callMiniProgram(bridge, 'phone-number', tokens.access_token, { code }),
        );
        expect(answer.status).toBe(503);
        expect(answer.headers.get('retry-after')).toBe('5');
        expect(answer.body.error).toBe('temporarily_unavailable');
        expect(answer.body.error_description).toContain('ask again with the button');
        expect((await accountOf(person))?.phone_number).toBeNull();
        // What the description says works.
        const again = await wxPhoneCode(bridge, person);
        const bound = await callMiniProgram(bridge, 'phone-number', tokens.access_token, {
          code: again.code,
        });
        expect(bound.status).toBe(200);
      },
    );
  });
}
