import { randomUUID } from 'node:crypto';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findAccountBySubject } from '../../src/accounts/repository.ts';
import {
  type Bridge,
  MINI_PROGRAM_APP,
  MINI_PROGRAM_CLIENT,
  RP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
  type TestApp,
  WEBSITE_AND_MINI_PROGRAM,
  WEBSITE_APP,
} from '../helpers/bridge.ts';
import { decodeEntities } from '../helpers/browser.ts';
import {
  createSandboxUser,
  decideOnWeChat,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { JS_CODE, TOKEN_EXCHANGE, tokenRequest, wxLogin } from '../helpers/mini-program.ts';

/**
 * A WeChat identity linked to another account than the one its unionid names (the app was moved
 * to another Open Platform account, so WeChat now gives its people other unionids; or damaged
 * data): the login cannot link it (repository.ts, IdentityConflictError) and an administrator has
 * to look. It surfaced as the generic error page, and at the token endpoint as "oops! something
 * went wrong"; now each says what it can, and the log names the app. The rows are made directly in
 * the database: no flow of the bridge's own makes them.
 */
for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`a WeChat identity linked to another account (${storage})`, () => {
    let bridge: Bridge;
    let rp: oidc.Configuration;

    beforeAll(async () => {
      bridge = await startBridge({
        storage,
        ...WEBSITE_AND_MINI_PROGRAM,
      });
      rp = await relyingParty(bridge);
    });
    afterAll(async () => {
      await bridge?.close();
    });

    /** The person's identity in `app`, linked to an account of the unionid it had before the move. */
    const linkedElsewhere = async (user: SandboxUser, app: TestApp) => {
      const db = bridge.server.stores.db;
      const now = new Date();
      const unionid = `before-the-move-${randomUUID()}`;
      const account = await db
        .insertInto('accounts')
        .values({
          subject: unionid,
          nickname: user.nickname,
          created_at: now,
          updated_at: now,
          profile_updated_at: now,
          last_login_at: now,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await db
        .insertInto('identities')
        .values({
          appid: app.appid,
          openid: user.openids[app.appid] as string,
          account_id: account.id,
          kind: app.kind,
          unionid,
          created_at: now,
          updated_at: now,
          last_login_at: now,
        })
        .execute();
      return account.id;
    };
    /** The one log line the refusal wrote, parsed. */
    const refusalLogged = (message: string) => {
      const lines = bridge.logs.filter((line) => line.includes(message));
      expect(lines).toHaveLength(1);
      return { line: lines[0] as string, fields: JSON.parse(lines[0] as string) as Record<string, unknown> };
    };

    test('a website login gets the failure page with a neutral message, the client server_error, the log the app', async () => {
      const user = await createSandboxUser(bridge, '迁移网站');
      const linkedAccountId = await linkedElsewhere(user, WEBSITE_APP);
      const login = await startLogin(rp);
      const page = await decideOnWeChat(login, { user, allow: true });

      expect(page.status).toBe(500);
      const text = decodeEntities(page.body);
      expect(text).toContain('你的账号暂时无法登录，需要网站管理员处理');
      // Scanning again cannot help; no account or WeChat id is shown.
      expect(page.body).not.toContain('id="try-again"');
      for (const secret of [linkedAccountId, user.unionid, user.openids[WEBSITE_APP.appid] as string])
        expect(page.body).not.toContain(secret);
      const reference = page.body.match(/class="reference-id">([^<]+)</)?.[1];

      const { line, fields } = refusalLogged(
        'wechat login refused: this WeChat identity is linked to another account',
      );
      expect(fields).toMatchObject({
        level: 'error',
        appid: WEBSITE_APP.appid,
        linkedAccountId,
        requestId: reference,
      });
      expect(line).not.toContain(user.openids[WEBSITE_APP.appid]);
      expect(line).not.toContain(user.unionid);
      // Nothing was written for the person's unionid.
      expect(await findAccountBySubject(bridge.server.stores.db, user.unionid)).toBeUndefined();

      // "Return to the application": the client hears server_error.
      const uid = new URL(page.url).pathname.split('/')[2];
      const back = await login.browser.follow(`${bridge.url}/interaction/${uid}/abort`, {
        method: 'POST',
        form: { reason: page.body.match(/name="reason" value="([^"]+)"/)?.[1] ?? '' },
        stopAt: RP.redirect_uris[0],
      });
      expect(new URL(back.location as string).searchParams.get('error')).toBe('server_error');
    });

    test('a mini program token exchange answers server_error with a description, and the log names the app', async () => {
      const user = await createSandboxUser(bridge, '迁移小程序');
      const linkedAccountId = await linkedElsewhere(user, MINI_PROGRAM_APP);
      const answer = await tokenRequest(bridge, {
        grant_type: TOKEN_EXCHANGE,
        subject_token: await wxLogin(bridge, user),
        subject_token_type: JS_CODE,
        scope: 'openid',
      });

      expect(answer.status).toBe(500);
      const body = answer.body as { error: string; error_description: string };
      expect(body.error).toBe('server_error');
      expect(body.error_description).toContain('retrying will not help');
      expect(JSON.stringify(body)).not.toContain(linkedAccountId);
      const { line, fields } = refusalLogged(
        'mini program login refused: this WeChat identity is linked to another account',
      );
      expect(fields).toMatchObject({
        level: 'error',
        clientId: MINI_PROGRAM_CLIENT.client_id,
        appid: MINI_PROGRAM_APP.appid,
        linkedAccountId,
      });
      expect(line).not.toContain(user.openids[MINI_PROGRAM_APP.appid]);
      // The engine's own server_error line does not repeat it.
      expect(bridge.logs.filter((entry) => entry.includes('oidc server_error'))).toEqual([]);
      expect(await findAccountBySubject(bridge.server.stores.db, user.unionid)).toBeUndefined();
    });
  });
}
