import { readFile } from 'node:fs/promises';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { flushIndexWrites } from '../../src/accounts/artifact-batch.ts';
import { indexedArtifacts } from '../../src/accounts/artifact-index.ts';
import { type AvatarStore, createSqlAvatarStore } from '../../src/accounts/avatars/store.ts';
import { deleteAccount, findAccountForOperator } from '../../src/accounts/deletion.ts';
import { CLEANUP_DELAY_MS, finishDeletions } from '../../src/accounts/deletion-cleanup.ts';
import { deleteAccountCommand, parseTarget } from '../../src/cli/delete-account-command.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { INTERACTION_DESTROY_GRACE_SECONDS } from '../../src/storage/destroy-grace.ts';
import { embeddedAccountsFile } from '../../src/storage/sqlite/accounts-database.ts';
import { embeddedArtifactsFile } from '../../src/storage/sqlite/database.ts';
import { grantOfAnotherInstance, loseIndexRows, signedUpLater } from '../helpers/account-lifecycle.ts';
import {
  BACKCHANNEL_LOGOUT_EVENT,
  BCL_RP,
  type LogoutReceiver,
  logoutReceiver,
  payloadOf,
  withBackchannelClient,
  withLogoutsDelivered,
} from '../helpers/backchannel.ts';
import { type Bridge, STORAGE_SETUPS, startBridge, storageAvailable } from '../helpers/bridge.ts';
import { embeddedArtifactRows } from '../helpers/embedded-artifacts.ts';
import { createSandboxUser, loginAs, relyingParty, type SandboxUser } from '../helpers/flow.ts';

/** How openid-client reports userinfo's 401 for a token that no longer works (RFC 6750 invalid_token). */
const INVALID_TOKEN = {
  status: 401,
  cause: [
    expect.objectContaining({
      scheme: 'bearer',
      parameters: expect.objectContaining({ error: 'invalid_token' }),
    }),
  ],
};

for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`account deletion (${storage})`, () => {
    let bridge: Bridge;
    let receiver: LogoutReceiver;
    let rp: oidc.Configuration;
    let bclRp: oidc.Configuration;
    beforeAll(async () => {
      receiver = await logoutReceiver();
      bridge = await startBridge({
        storage,
        configure: withBackchannelClient(receiver),
      });
      rp = await relyingParty(bridge);
      bclRp = await relyingParty(bridge, BCL_RP);
    });
    afterAll(async () => {
      await bridge?.close();
      receiver?.server.close();
    });

    /** Deletes as the server would: the operator CLI where it can share the stores, else in-process. */
    const erase = async (user: SandboxUser) => {
      if (storage === 'postgres+redis') {
        // The command is another process in production: it sees the grant index as the servers have
        // written it, and they write it in 50 ms batches. Written now, as a moment later it would be.
        await flushIndexWrites(bridge.server.stores.db);
        const out: string[] = [];
        const code = await deleteAccountCommand({
          config: bridge.server.config,
          target: parseTarget([
            '--openid',
            user.openids[Object.keys(user.openids)[0] as string] as string,
          ]) as {
            openid: string;
          },
          logger: createLogger({ level: 'silent' }),
          stdout: (text) => out.push(text),
          stderr: (text) => out.push(text),
        });
        expect(code).toBe(0);
        expect(out.join('')).not.toContain(user.unionid);
        return;
      }
      const { db, oidcAdapter, kv, scrub } = bridge.server.stores;
      const account = await findAccountForOperator(db, { unionid: user.unionid });
      if (!account) throw new Error('no account');
      await deleteAccount(
        {
          db,
          adapter: oidcAdapter,
          kv,
          scrub,
          avatars: createSqlAvatarStore(db),
          logger: createLogger({ level: 'silent' }),
          now: () => new Date(),
        },
        account,
        'operator',
      );
    };

    test('tokens valid a moment before are inactive at introspection and refresh fails', async () => {
      const user = await createSandboxUser(bridge, '注销的人');
      const { tokens } = await loginAs(rp, user, {
        scope: 'openid profile offline_access',
        prompt: 'consent',
      });
      const refreshToken = tokens.refresh_token as string;
      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(true);
      expect((await oidc.tokenIntrospection(rp, refreshToken)).active).toBe(true);

      await erase(user);

      expect((await oidc.tokenIntrospection(rp, tokens.access_token)).active).toBe(false);
      expect((await oidc.tokenIntrospection(rp, refreshToken)).active).toBe(false);
      await expect(oidc.refreshTokenGrant(rp, refreshToken)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      await expect(oidc.fetchUserInfo(rp, tokens.access_token, user.unionid)).rejects.toMatchObject(
        INVALID_TOKEN,
      );
    });

    test('a grant the deletion could not find does not come back to life when the person signs up again', async () => {
      const user = await createSandboxUser(bridge, '回来的人');
      const { tokens } = await loginAs(rp, user, {
        scope: 'openid profile offline_access',
        prompt: 'consent',
      });
      const { db } = bridge.server.stores;
      await loseIndexRows(db, user.unionid);
      await erase(user);

      // The same person signs up again, later: the new account has the same subject (the unionid).
      await loginAs(rp, user, { scope: 'openid' });
      await signedUpLater(db, user.unionid);

      for (const token of [tokens.access_token, tokens.refresh_token as string])
        expect((await oidc.tokenIntrospection(rp, token)).active).toBe(false);
      await expect(oidc.refreshTokenGrant(rp, tokens.refresh_token as string)).rejects.toMatchObject({
        error: 'invalid_grant',
      });
      await expect(oidc.fetchUserInfo(rp, tokens.access_token, user.unionid)).rejects.toMatchObject(
        INVALID_TOKEN,
      );
    });

    test("a grant written between the deletion's first revocation and its settle wait is revoked by the late pass, and counted", async () => {
      const user = await createSandboxUser(bridge, '迟到的授权');
      await loginAs(rp, user, { scope: 'openid' });
      const { db, oidcAdapter } = bridge.server.stores;
      const account = await findAccountForOperator(db, { unionid: user.unionid });
      if (!account) throw new Error('no account');
      const foundFirst = (await indexedArtifacts(db, user.unionid, 'Grant')).length;
      expect(foundFirst).toBeGreaterThan(0);

      // A login on another instance, landing after the first pass: its grant, a token under it and
      // the grant's index row. The avatar is deleted between the first pass and the settle wait.
      let late: { grantId: string; tokenId: string } | undefined;
      const avatarStore = createSqlAvatarStore(db);
      const avatars: AvatarStore = {
        ...avatarStore,
        async delete(accountId) {
          await avatarStore.delete(accountId);
          late = await grantOfAnotherInstance(bridge.server.stores, user.unionid);
        },
      };

      const report = await deleteAccount(
        {
          db,
          adapter: oidcAdapter,
          avatars,
          logger: createLogger({ level: 'silent' }),
          now: () => new Date(),
        },
        account,
        'operator',
      );

      expect(late).toBeDefined();
      expect(await oidcAdapter('Grant').find(late?.grantId as string)).toBeUndefined();
      expect(await oidcAdapter('AccessToken').find(late?.tokenId as string)).toBeUndefined();
      expect(await indexedArtifacts(db, user.unionid, 'Grant')).toEqual([]);
      expect(report.grantsRevoked).toBe(foundFirst + 1);
    });

    test('leaves no personal data behind, only an audit row with counts', async () => {
      const user = await createSandboxUser(bridge, '不留痕迹');
      await loginAs(rp, user, { scope: 'openid profile' });
      const db = bridge.server.stores.db;
      const account = await findAccountForOperator(db, { unionid: user.unionid });
      expect(
        await db
          .selectFrom('avatars')
          .select('account_id')
          .where('account_id', '=', account?.id as string)
          .executeTakeFirst(),
      ).toBeDefined();
      const auditsBefore = (await db.selectFrom('account_deletions').selectAll().execute()).length;

      await erase(user);

      expect(await findAccountForOperator(db, { unionid: user.unionid })).toBeUndefined();
      expect(
        await db.selectFrom('identities').selectAll().where('unionid', '=', user.unionid).execute(),
      ).toEqual([]);
      expect(
        await db
          .selectFrom('avatars')
          .selectAll()
          .where('account_id', '=', account?.id as string)
          .execute(),
      ).toEqual([]);
      expect(
        await db.selectFrom('account_artifacts').selectAll().where('subject', '=', user.unionid).execute(),
      ).toEqual([]);
      const audits = await db.selectFrom('account_deletions').selectAll().orderBy('deleted_at').execute();
      expect(audits).toHaveLength(auditsBefore + 1);
      const audit = audits.at(-1);
      expect(audit).toMatchObject({ requested_by: 'operator', identities: 1 });
      expect(JSON.stringify(audit)).not.toContain(user.unionid);
      if (storage === 'embedded') {
        // The one exception: a finished authorization request (Interaction) lingers for a few seconds
        // so that a reload can survive an instance dying mid-resume (src/storage/destroy-grace.ts).
        const leftovers = embeddedArtifactRows(bridge.server.stores, 'oidc_artifacts');
        expect(leftovers.length).toBeGreaterThan(0);
        const personal = leftovers.filter((row) => String(row.payload).includes(user.unionid));
        const graceEnds = Date.now() + INTERACTION_DESTROY_GRACE_SECONDS * 1000;
        for (const row of personal) {
          expect(row.model).toBe('Interaction');
          expect(row.expires_at).toBeLessThanOrEqual(graceEnds);
        }
      }
    });

    test.skipIf(storage !== 'embedded')(
      "leaves the person's data readable nowhere in the files, write-ahead logs included",
      async () => {
        const user = await createSandboxUser(bridge, '文件里也不留');
        await loginAs(rp, user, { scope: 'openid profile' });
        const openid = Object.values(user.openids)[0] as string;
        const { dataDir } = bridge.config;
        const accounts = embeddedAccountsFile(dataDir);
        const artifacts = embeddedArtifactsFile(dataDir);
        const found = async (file: string, text: string) => {
          const bytes = Buffer.concat(
            await Promise.all(
              [file, `${file}-wal`].map((path) => readFile(path).catch(() => Buffer.alloc(0))),
            ),
          );
          return bytes.includes(Buffer.from(text, 'utf8'));
        };
        // Written, and so in the files (or their logs) before.
        expect(await found(accounts, user.unionid)).toBe(true);
        expect(await found(accounts, '文件里也不留')).toBe(true);

        await erase(user);

        for (const text of [openid, '文件里也不留']) expect(await found(accounts, text)).toBe(false);
        // The unionid stays only in the note of what to look for again (deletion-cleanup.ts), until
        // that pass, a couple of minutes later.
        expect(await found(accounts, user.unionid)).toBe(true);
        const { db, oidcAdapter, kv, scrub } = bridge.server.stores;
        const logger = createLogger({ level: 'silent' });
        const later = () => new Date(Date.now() + CLEANUP_DELAY_MS + 1000);
        await finishDeletions({ db, adapter: oidcAdapter, kv, scrub, logger, now: later });
        expect(await found(accounts, user.unionid)).toBe(false);
        // The artifacts: no token, session or grant of theirs (only the finished login may linger a
        // few seconds, unusable, naming the unionid: the test above).
        for (const text of [openid, '文件里也不留']) expect(await found(artifacts, text)).toBe(false);
      },
    );

    test('a deletion whose late pass fails announces it once, and is done for the person', async () => {
      const user = await createSandboxUser(bridge, '只通知一次');
      await loginAs(rp, user, { scope: 'openid' });
      const { db, oidcAdapter } = bridge.server.stores;
      const account = await findAccountForOperator(db, { unionid: user.unionid });
      if (!account) throw new Error('no account');
      // A login of another instance lands during the first pass, and revoking it fails.
      let late: { grantId: string } | undefined;
      const avatarStore = createSqlAvatarStore(db);
      const avatars: AvatarStore = {
        ...avatarStore,
        async delete(accountId) {
          await avatarStore.delete(accountId);
          late = await grantOfAnotherInstance(bridge.server.stores, user.unionid);
        },
      };
      const adapter = (model: string) =>
        Object.assign(Object.create(oidcAdapter(model)), {
          revokeByGrantId: async (grantId: string) => {
            if (grantId === late?.grantId) throw new Error('Command timed out');
            return oidcAdapter(model).revokeByGrantId?.(grantId);
          },
        });
      // Each announcement as the notifier makes them: written with the change, sent after it.
      const sends: number[] = [];
      const notify = () => {
        const at = sends.push(0) - 1;
        return {
          write: async () => {},
          send: async () => {
            sends[at] = (sends[at] ?? 0) + 1;
          },
        };
      };
      const logger = createLogger({ level: 'silent' });
      const report = await deleteAccount(
        { db, adapter, avatars, logger, now: () => new Date(), notify },
        account,
        'person',
      );
      expect(late).toBeDefined();
      expect(report.identities).toBe(1);
      expect(await findAccountForOperator(db, { unionid: user.unionid })).toBeUndefined();
      // The deletion's announcement, sent once (the late pass's own failed before it was sent).
      expect(sends[0]).toBe(1);
    });

    test.skipIf(storage !== 'postgres+redis')(
      'relying parties that registered a back-channel logout URI are told the account is gone',
      async () => {
        const user = await createSandboxUser(bridge, '通知应用');
        await loginAs(bclRp, user, { scope: 'openid' });
        receiver.tokens.length = 0;
        await withLogoutsDelivered(receiver, () => erase(user));
        expect(receiver.tokens).toHaveLength(1);
        const claims = payloadOf(receiver.tokens[0] as string);
        expect(claims).toMatchObject({ iss: bridge.url, aud: BCL_RP.client_id, sub: user.unionid });
        expect(claims.events).toEqual(BACKCHANNEL_LOGOUT_EVENT);
      },
    );
  });
}
