import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { indexedArtifacts } from '../../src/accounts/artifact-index.ts';
import { createSqlAvatarStore } from '../../src/accounts/avatars/store.ts';
import { type DeletionDeps, deleteAccount, findAccountForOperator } from '../../src/accounts/deletion.ts';
import {
  CLEANUP_DELAY_MS,
  CLEANUP_MAX_ATTEMPTS,
  finishDeletions,
} from '../../src/accounts/deletion-cleanup.ts';
import { createGrantIdentityStore } from '../../src/mini-program/grant-identities.ts';
import { sessionKeyName } from '../../src/mini-program/session-keys.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { grantOfAnotherInstance } from '../helpers/account-lifecycle.ts';
import {
  type Bridge,
  MINI_PROGRAM_APP,
  STORAGE_SETUPS,
  startBridge,
  storageAvailable,
} from '../helpers/bridge.ts';
import { createSandboxUser, loginAs, relyingParty, type SandboxUser } from '../helpers/flow.ts';
import { bridgeBehindRedisRelay } from '../helpers/redis-relay.ts';
import type { TcpRelay } from '../production/tcp-relay.ts';

/**
 * What a deletion leaves outside the accounts database is looked for again a couple of minutes
 * later (src/accounts/deletion-cleanup.ts): whatever the deletion's own passes could not remove (a
 * store that stopped answering after the commit) or could not see yet (a login in flight at the
 * deletion, indexing its grant after them).
 */
const later = () => new Date(Date.now() + CLEANUP_DELAY_MS + 1000);

function deletionDeps(bridge: Bridge, logs: string[] = []): DeletionDeps {
  const { db, oidcAdapter, kv, scrub } = bridge.server.stores;
  const destination = { write: (line: string) => logs.push(line) } as unknown as NodeJS.WritableStream;
  const logger = createLogger({ level: 'info', destination });
  return {
    db,
    adapter: oidcAdapter,
    kv,
    scrub,
    avatars: createSqlAvatarStore(db),
    logger,
    now: () => new Date(),
  };
}

async function cleanups(bridge: Bridge, subject: string) {
  return bridge.server.stores.db
    .selectFrom('account_cleanups')
    .selectAll()
    .where('subject', '=', subject)
    .execute();
}

for (const storage of STORAGE_SETUPS) {
  const available = await storageAvailable(storage);
  describe.skipIf(!available)(`the cleanup after a deletion (${storage})`, () => {
    let bridge: Bridge;
    let rp: oidc.Configuration;
    beforeAll(async () => {
      bridge = await startBridge({ storage });
      rp = await relyingParty(bridge);
    });
    afterAll(async () => {
      await bridge?.close();
    });

    async function deleteNow(user: SandboxUser, deps = deletionDeps(bridge)) {
      const account = await findAccountForOperator(bridge.server.stores.db, { unionid: user.unionid });
      if (!account) throw new Error('no account');
      return deleteAccount(deps, account, 'person');
    }

    test('a grant indexed after the deletion is revoked by the pass a couple of minutes later, and the note goes', async () => {
      const user = await createSandboxUser(bridge, '后来的登录');
      await loginAs(rp, user, { scope: 'openid' });
      await deleteNow(user);
      expect(await cleanups(bridge, user.unionid)).toHaveLength(1);

      const { grantId, tokenId } = await grantOfAnotherInstance(bridge.server.stores, user.unionid);
      const deps = { ...deletionDeps(bridge), now: later };
      // Not before it is due.
      expect(await finishDeletions(deletionDeps(bridge))).toBe(0);
      expect(await bridge.server.stores.oidcAdapter('Grant').find(grantId)).toBeDefined();

      expect(await finishDeletions(deps)).toBeGreaterThanOrEqual(1);
      const { oidcAdapter, db } = bridge.server.stores;
      expect(await oidcAdapter('Grant').find(grantId)).toBeUndefined();
      expect(await oidcAdapter('AccessToken').find(tokenId)).toBeUndefined();
      expect(await indexedArtifacts(db, user.unionid, 'Grant')).toEqual([]);
      expect(await cleanups(bridge, user.unionid)).toEqual([]);
    });

    // A mini-program login racing the deletion puts its session key after the deletion forgot the
    // account's, for an identity the deletion then removes: its grant still names the identity.
    test("a late mini-program login's session key goes with its grant at the later pass", async () => {
      const user = await createSandboxUser(bridge, '后来的小程序登录');
      await loginAs(rp, user, { scope: 'openid' });
      await deleteNow(user);
      const kv = bridge.server.stores.kv;
      if (!kv) throw new Error('no key-value store');
      const { grantId } = await grantOfAnotherInstance(bridge.server.stores, user.unionid);
      const identity = { appid: MINI_PROGRAM_APP.appid, openid: `late-${randomUUID()}` };
      await createGrantIdentityStore(kv).remember(grantId, identity, 3600);
      const keyName = sessionKeyName(identity.appid, identity.openid);
      await kv.put(keyName, 'sealed session key', 3600);

      expect(await finishDeletions({ ...deletionDeps(bridge), now: later })).toBeGreaterThanOrEqual(1);
      expect(await kv.get(keyName)).toBeUndefined();
      expect(await createGrantIdentityStore(kv).find(grantId)).toBeUndefined();
    });

    test('a cleanup that keeps failing is tried again later, and given up after its last attempt', async () => {
      const { db, oidcAdapter } = bridge.server.stores;
      const subject = `gone-${randomUUID()}`;
      await grantOfAnotherInstance(bridge.server.stores, subject);
      const failing = (model: string) =>
        Object.assign(Object.create(oidcAdapter(model)), {
          revokeByGrantId: async () => {
            throw new Error('Command timed out');
          },
        });
      const logs: string[] = [];
      const deps = { ...deletionDeps(bridge, logs), adapter: failing, now: later };
      const note = (attempts: number) =>
        db
          .insertInto('account_cleanups')
          .values({ subject, due_at: new Date(), attempts })
          .onConflict((oc) => oc.column('subject').doUpdateSet({ due_at: new Date(), attempts }))
          .execute();

      await note(0);
      expect(await finishDeletions(deps)).toBe(0);
      const [retried] = await cleanups(bridge, subject);
      expect(retried?.attempts).toBe(1);
      expect(retried?.due_at.getTime()).toBeGreaterThan(later().getTime());

      await note(CLEANUP_MAX_ATTEMPTS - 1);
      expect(await finishDeletions(deps)).toBe(0);
      expect(await cleanups(bridge, subject)).toEqual([]);
      expect(logs.some((line) => line.includes('given up'))).toBe(true);
      expect(logs.join('')).not.toContain(subject);
    });

    test('a person who signed up again meanwhile keeps the new account’s logins', async () => {
      const user = await createSandboxUser(bridge, '又回来了');
      await loginAs(rp, user, { scope: 'openid' });
      await deleteNow(user);
      const again = await loginAs(rp, user, { scope: 'openid' });

      await finishDeletions({ ...deletionDeps(bridge), now: later });

      expect(await cleanups(bridge, user.unionid)).toEqual([]);
      const claims = await oidc.fetchUserInfo(rp, again.tokens.access_token, user.unionid);
      expect(claims.sub).toBe(user.unionid);
    });
  });
}

describe.skipIf(!(await storageAvailable('postgres+redis')))(
  'a deletion whose store stops answering after the commit',
  () => {
    let relay: TcpRelay;
    let bridge: Bridge;
    let rp: oidc.Configuration;
    beforeAll(async () => {
      ({ relay, bridge } = await bridgeBehindRedisRelay());
      rp = await relyingParty(bridge);
    }, 30_000);
    afterAll(async () => {
      await bridge?.close();
      await relay?.close();
    });

    test('is done for the person, says what it left, and the later pass removes it', async () => {
      const user = await createSandboxUser(bridge, '删到一半');
      const { tokens } = await loginAs(rp, user, { scope: 'openid offline_access', prompt: 'consent' });
      const { db, oidcAdapter } = bridge.server.stores;
      const [grant] = await indexedArtifacts(db, user.unionid, 'Grant');
      if (!grant) throw new Error('no grant indexed');

      // Redis stops answering at the revocation of the grant's tokens (its index read), after the commit.
      relay.loseAnswerAfter((request) => request.toString('latin1').includes('oidc-grant:'), { hold: true });
      const logs: string[] = [];
      const account = await findAccountForOperator(db, { unionid: user.unionid });
      if (!account) throw new Error('no account');
      let report: Awaited<ReturnType<typeof deleteAccount>>;
      try {
        report = await deleteAccount(deletionDeps(bridge, logs), account, 'person');
      } finally {
        relay.unhang();
      }
      expect(report.identities).toBe(1);
      expect(await findAccountForOperator(db, { unionid: user.unionid })).toBeUndefined();
      const line = logs.map((text) => JSON.parse(text)).find((entry) => entry.level === 'error');
      expect(line?.msg).toContain('could not all be revoked yet');
      expect(JSON.stringify(logs)).not.toContain(user.unionid);
      // Left in Redis: the refresh token, unusable (no account), and still the person's.
      expect(await oidcAdapter('RefreshToken').find(tokens.refresh_token as string)).toBeDefined();

      expect(await finishDeletions({ ...deletionDeps(bridge), now: later })).toBeGreaterThanOrEqual(1);
      expect(await oidcAdapter('RefreshToken').find(tokens.refresh_token as string)).toBeUndefined();
      expect(await oidcAdapter('Grant').find(grant.id)).toBeUndefined();
      expect(await indexedArtifacts(db, user.unionid, 'Grant')).toEqual([]);
      expect(await cleanups(bridge, user.unionid)).toEqual([]);
    }, 30_000);
  },
);
