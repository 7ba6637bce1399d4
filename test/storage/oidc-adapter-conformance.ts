import { randomUUID } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  INTERACTION_DESTROY_GRACE_SECONDS,
  SESSION_TOMBSTONE_SECONDS,
} from '../../src/storage/destroy-grace.ts';
import type { AdapterFactory, ReleasableAdapter } from '../../src/storage/ports.ts';

/** What every oidc-provider adapter implementation gives the shared suite. */
export interface OidcAdapterHarness {
  factory: AdapterFactory;
  /** Epoch seconds on the clock the implementation was given. */
  nowSeconds(): number;
  /** Lets `seconds` pass for the implementation (its clock, and for Redis its TTLs). */
  advance(seconds: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * The adapter contract oidc-provider relies on, run against every implementation
 * (dex-style storage conformance). Each test uses fresh random ids, so tests share one
 * store and one clock that only moves forward.
 */
export function describeOidcAdapterConformance(
  name: string,
  open: () => Promise<OidcAdapterHarness>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`oidc-provider adapter conformance: ${name}`, () => {
    let h: OidcAdapterHarness;
    beforeAll(async () => {
      h = await open();
    });
    afterAll(async () => {
      await h?.close();
    });

    const id = () => randomUUID();
    const code = (grantId: string, extra: Partial<AdapterPayload> = {}): AdapterPayload => ({
      kind: 'AuthorizationCode',
      jti: id(),
      grantId,
      clientId: 'client-1',
      accountId: 'unionid-1',
      scope: 'openid profile',
      redirectUri: 'https://rp.example/cb',
      ...extra,
    });

    it('finds nothing for an unknown id', async () => {
      expect(await h.factory('AuthorizationCode').find(id())).toBeUndefined();
      expect(await h.factory('Session').findByUid(id())).toBeUndefined();
      expect(await h.factory('DeviceCode').findByUserCode(id())).toBeUndefined();
    });

    it('returns an upserted payload as it was stored, arrays and nesting included', async () => {
      const adapter = h.factory('AuthorizationCode');
      const key = id();
      const payload = code(id(), {
        claims: { id_token: { email: null } },
        amr: [],
        extra: { nested: { list: [1, 'two', { three: true }] } },
      });
      await adapter.upsert(key, payload, 600);
      expect(await adapter.find(key)).toEqual(payload);
    });

    it('stores any string a request can carry: NUL, other control characters, lone surrogates, astral characters', async () => {
      // An authorization request's nonce or state reaches the Interaction's payload as sent.
      const adapter = h.factory('Interaction');
      const key = id();
      const payload = {
        kind: 'Interaction',
        jti: key,
        params: { nonce: 'a\u0000b', state: '\u0001\u001f\u007f', login_hint: '\ud800 😀 微信' },
      };
      await adapter.upsert(key, payload, 600);
      expect(await adapter.find(key)).toEqual(payload);
    });

    it('replaces the payload on a second upsert of the same id', async () => {
      const adapter = h.factory('Session');
      const key = id();
      await adapter.upsert(key, { kind: 'Session', jti: key, uid: id(), accountId: 'a' }, 600);
      const second = { kind: 'Session', jti: key, uid: id(), accountId: 'b' };
      await adapter.upsert(key, second, 600);
      expect(await adapter.find(key)).toEqual(second);
    });

    it('keeps the artifacts of different models apart under the same id', async () => {
      const key = id();
      await h.factory('AccessToken').upsert(key, { kind: 'AccessToken', jti: key }, 600);
      expect(await h.factory('RefreshToken').find(key)).toBeUndefined();
    });

    it('stops finding an artifact once expiresIn seconds have passed', async () => {
      const adapter = h.factory('AccessToken');
      const key = id();
      await adapter.upsert(key, { kind: 'AccessToken', jti: key }, 60);
      await h.advance(58);
      expect(await adapter.find(key)).toBeDefined();
      await h.advance(3);
      expect(await adapter.find(key)).toBeUndefined();
    });

    it('keeps an artifact upserted without expiresIn', async () => {
      const adapter = h.factory('RegistrationAccessToken');
      const key = id();
      await adapter.upsert(key, { kind: 'RegistrationAccessToken', jti: key }, undefined);
      await h.advance(400 * 24 * 3600);
      expect(await adapter.find(key)).toBeDefined();
    });

    it('marks a consumed artifact with the epoch seconds of consumption, payload otherwise unchanged', async () => {
      const adapter = h.factory('AuthorizationCode');
      const key = id();
      const payload = code(id());
      await adapter.upsert(key, payload, 600);
      expect((await adapter.find(key))?.consumed).toBeUndefined();
      const before = h.nowSeconds();
      await adapter.consume(key);
      const found = await adapter.find(key);
      expect(found?.consumed).toBeTypeOf('number');
      expect(found?.consumed).toBeGreaterThanOrEqual(before);
      expect(found?.consumed).toBeLessThanOrEqual(h.nowSeconds());
      const { consumed: _, ...rest } = found ?? {};
      expect(rest).toEqual(payload);
    });

    it('keeps the original expiry of an artifact after consuming it', async () => {
      const adapter = h.factory('RefreshToken');
      const key = id();
      await adapter.upsert(key, { kind: 'RefreshToken', jti: key }, 100);
      await adapter.consume(key);
      await h.advance(101);
      expect(await adapter.find(key)).toBeUndefined();
    });

    it('keeps consumed when a consumed payload is upserted again', async () => {
      const adapter = h.factory('RefreshToken');
      const key = id();
      await adapter.upsert(key, { kind: 'RefreshToken', jti: key, consumed: 1_700_000_000 }, 600);
      expect((await adapter.find(key))?.consumed).toBe(1_700_000_000);
      await expect(adapter.consume(key)).rejects.toBeInstanceOf(errors.InvalidGrant);
    });

    // Ours (src/storage/ports.ts, ReleasableAdapter): what a failed token request spent, given back.
    it('releases a consume only with its own mark, and the artifact can then be spent once more', async () => {
      const adapter = h.factory('RefreshToken') as ReleasableAdapter;
      expect(adapter.release).toBeTypeOf('function');
      const key = id();
      await adapter.upsert(key, { kind: 'RefreshToken', jti: key, grantId: id() }, 600);
      await adapter.consume(key, 'mark-a');
      await adapter.release(key, 'mark-b');
      expect((await adapter.find(key))?.consumed).toBeTypeOf('number');
      await adapter.release(key, 'mark-a');
      expect((await adapter.find(key))?.consumed).toBeUndefined();
      await adapter.consume(key, 'mark-c');
      await expect(adapter.consume(key, 'mark-d')).rejects.toBeInstanceOf(errors.InvalidGrant);
      // A consume without a mark (oidc-provider's own, outside a token request) is never released.
      const other = id();
      await adapter.upsert(other, { kind: 'RefreshToken', jti: other, grantId: id() }, 600);
      await adapter.consume(other);
      await adapter.release(other, '');
      expect((await adapter.find(other))?.consumed).toBeTypeOf('number');
    });

    it('rejects a second consume with invalid_grant "<model> already consumed"', async () => {
      const adapter = h.factory('AuthorizationCode');
      const key = id();
      await adapter.upsert(key, code(id()), 600);
      await adapter.consume(key);
      const error = await adapter.consume(key).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(errors.InvalidGrant);
      expect(error).toMatchObject({
        error: 'invalid_grant',
        error_detail: 'AuthorizationCode already consumed',
      });
    });

    it('rejects consuming a missing or expired artifact with invalid_grant', async () => {
      const adapter = h.factory('AuthorizationCode');
      await expect(adapter.consume(id())).rejects.toBeInstanceOf(errors.InvalidGrant);
      const key = id();
      await adapter.upsert(key, code(id()), 10);
      await h.advance(11);
      await expect(adapter.consume(key)).rejects.toBeInstanceOf(errors.InvalidGrant);
      expect(await adapter.find(key)).toBeUndefined();
    });

    it('lets exactly one of 8 parallel consumes of one code succeed; the other 7 get invalid_grant', async () => {
      const adapter = h.factory('AuthorizationCode');
      const key = id();
      await adapter.upsert(key, code(id()), 600);
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => adapter.consume(key)));
      const fulfilled = results.filter((r) => r.status === 'fulfilled');
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(fulfilled).toHaveLength(1);
      expect(rejected).toHaveLength(7);
      for (const r of rejected) expect(r.reason).toBeInstanceOf(errors.InvalidGrant);
    });

    it('destroys an artifact, and destroying a missing one is not an error', async () => {
      const adapter = h.factory('AccessToken');
      const key = id();
      await adapter.upsert(key, { kind: 'AccessToken', jti: key }, 600);
      await adapter.destroy(key);
      expect(await adapter.find(key)).toBeUndefined();
      await adapter.destroy(id());
    });

    it('destroys the artifacts of every model but Interaction at once', async () => {
      for (const model of [
        'Session',
        'Grant',
        'AuthorizationCode',
        'RefreshToken',
        'PushedAuthorizationRequest',
      ]) {
        const adapter = h.factory(model);
        const key = id();
        await adapter.upsert(key, { kind: model, jti: key, grantId: id() }, 600);
        await adapter.destroy(key);
        expect(await adapter.find(key), model).toBeUndefined();
      }
    });

    // Issue 6: the browser's reload of a resume whose instance died after destroying it.
    it('keeps a destroyed Interaction findable for the grace, then no longer', async () => {
      const adapter = h.factory('Interaction');
      const key = id();
      const payload = { kind: 'Interaction', jti: key, result: { login: { accountId: 'unionid-1' } } };
      await adapter.upsert(key, payload, 600);
      await adapter.destroy(key);
      expect(await adapter.find(key)).toEqual(payload);
      await h.advance(INTERACTION_DESTROY_GRACE_SECONDS - 1);
      expect(await adapter.find(key)).toEqual(payload);
      await h.advance(2);
      expect(await adapter.find(key)).toBeUndefined();
    });

    it('never lengthens the life of an Interaction that ends before the grace', async () => {
      const adapter = h.factory('Interaction');
      const key = id();
      await adapter.upsert(key, { kind: 'Interaction', jti: key }, 3);
      await adapter.destroy(key);
      await h.advance(4);
      expect(await adapter.find(key)).toBeUndefined();
    });

    it('destroys an Interaction stored without expiry within the grace', async () => {
      const adapter = h.factory('Interaction');
      const key = id();
      await adapter.upsert(key, { kind: 'Interaction', jti: key }, undefined);
      await adapter.destroy(key);
      await h.advance(INTERACTION_DESTROY_GRACE_SECONDS + 1);
      expect(await adapter.find(key)).toBeUndefined();
    });

    it('creates nothing when destroying a missing or expired Interaction', async () => {
      const adapter = h.factory('Interaction');
      const missing = id();
      await adapter.destroy(missing);
      expect(await adapter.find(missing)).toBeUndefined();
      const expired = id();
      await adapter.upsert(expired, { kind: 'Interaction', jti: expired }, 5);
      await h.advance(6);
      await adapter.destroy(expired);
      expect(await adapter.find(expired)).toBeUndefined();
    });

    // A request that loaded the session before a logout destroyed it saves it when it ends
    // (oidc-provider's lib/shared/session.js): the logout must hold (../../src/storage/destroy-grace.ts).
    it('never brings a destroyed Session back: a later upsert of its id writes nothing, until the tombstone lapses', async () => {
      const adapter = h.factory('Session');
      const key = id();
      const uid = id();
      await adapter.upsert(key, { kind: 'Session', jti: key, uid, accountId: 'unionid-1' }, 600);
      await adapter.destroy(key);
      await adapter.upsert(key, { kind: 'Session', jti: key, uid, accountId: 'unionid-1' }, 600);
      expect(await adapter.find(key)).toBeUndefined();
      expect(await adapter.findByUid(uid)).toBeUndefined();
      // Other models are written again as before (a code, a grant: their ids are not a logout's).
      const grant = h.factory('Grant');
      await grant.upsert(key, { kind: 'Grant', jti: key }, 600);
      await grant.destroy(key);
      await grant.upsert(key, { kind: 'Grant', jti: key }, 600);
      expect(await grant.find(key)).toMatchObject({ jti: key });
      // The tombstone is bounded: it does not outlive its purpose.
      await h.advance(SESSION_TOMBSTONE_SECONDS + 1);
      await adapter.upsert(key, { kind: 'Session', jti: key, uid, accountId: 'unionid-1' }, 600);
      expect(await adapter.find(key)).toMatchObject({ jti: key });
    });

    it('finds a session by its uid until it is destroyed or expires', async () => {
      const adapter = h.factory('Session');
      const [a, b] = [id(), id()];
      const uidA = id();
      const uidB = id();
      await adapter.upsert(a, { kind: 'Session', jti: a, uid: uidA }, 600);
      await adapter.upsert(b, { kind: 'Session', jti: b, uid: uidB }, 60);
      expect(await adapter.findByUid(uidA)).toMatchObject({ jti: a, uid: uidA });
      await adapter.destroy(a);
      expect(await adapter.findByUid(uidA)).toBeUndefined();
      await h.advance(61);
      expect(await adapter.findByUid(uidB)).toBeUndefined();
    });

    it('stops finding a session by a uid it no longer has', async () => {
      const adapter = h.factory('Session');
      const key = id();
      const [oldUid, newUid] = [id(), id()];
      await adapter.upsert(key, { kind: 'Session', jti: key, uid: oldUid }, 600);
      await adapter.upsert(key, { kind: 'Session', jti: key, uid: newUid }, 600);
      expect(await adapter.findByUid(oldUid)).toBeUndefined();
      expect(await adapter.findByUid(newUid)).toMatchObject({ jti: key });
    });

    it('finds a device code by its user code until it expires', async () => {
      const adapter = h.factory('DeviceCode');
      const key = id();
      const userCode = 'BCDF-GHJK';
      const other = h.factory('DeviceCode');
      await adapter.upsert(
        key,
        { kind: 'DeviceCode', jti: key, userCode: `${userCode}-${key}`, grantId: id() },
        60,
      );
      expect(await other.findByUserCode(`${userCode}-${key}`)).toMatchObject({ jti: key });
      await h.advance(61);
      expect(await other.findByUserCode(`${userCode}-${key}`)).toBeUndefined();
    });

    it('revokes every artifact of a grant, across models, and nothing of other grants', async () => {
      const grantId = id();
      const otherGrant = id();
      const at = id();
      const rt = id();
      const ac = id();
      const keep = id();
      await h.factory('AccessToken').upsert(at, { kind: 'AccessToken', jti: at, grantId }, 600);
      await h.factory('RefreshToken').upsert(rt, { kind: 'RefreshToken', jti: rt, grantId }, 6000);
      await h.factory('AuthorizationCode').upsert(ac, code(grantId), 60);
      await h
        .factory('AccessToken')
        .upsert(keep, { kind: 'AccessToken', jti: keep, grantId: otherGrant }, 600);

      await h.factory('AccessToken').revokeByGrantId(grantId);

      expect(await h.factory('AccessToken').find(at)).toBeUndefined();
      expect(await h.factory('RefreshToken').find(rt)).toBeUndefined();
      expect(await h.factory('AuthorizationCode').find(ac)).toBeUndefined();
      expect(await h.factory('AccessToken').find(keep)).toBeDefined();
    });

    it('does not revoke non-grant models that carry a grantId (an Interaction)', async () => {
      const grantId = id();
      const interaction = id();
      await h
        .factory('Interaction')
        .upsert(interaction, { kind: 'Interaction', jti: interaction, grantId }, 600);
      await h.factory('Interaction').revokeByGrantId(grantId);
      expect(await h.factory('Interaction').find(interaction)).toBeDefined();
    });

    it('revokes a grant whose longest-lived member outlives members upserted after it', async () => {
      const grantId = id();
      const rt = id();
      await h.factory('RefreshToken').upsert(rt, { kind: 'RefreshToken', jti: rt, grantId }, 1000);
      for (const ttl of [10, 20]) {
        const at = id();
        await h.factory('AccessToken').upsert(at, { kind: 'AccessToken', jti: at, grantId }, ttl);
      }
      await h.advance(500);
      expect(await h.factory('RefreshToken').find(rt)).toBeDefined();
      await h.factory('RefreshToken').revokeByGrantId(grantId);
      expect(await h.factory('RefreshToken').find(rt)).toBeUndefined();
    });

    it('revokes a grant that has members without expiry', async () => {
      const grantId = id();
      const at = id();
      const rt = id();
      await h.factory('RefreshToken').upsert(rt, { kind: 'RefreshToken', jti: rt, grantId }, undefined);
      await h.factory('AccessToken').upsert(at, { kind: 'AccessToken', jti: at, grantId }, 5);
      await h.advance(3600);
      await h.factory('AccessToken').revokeByGrantId(grantId);
      expect(await h.factory('RefreshToken').find(rt)).toBeUndefined();
    });

    it('treats revoking an unknown grant as a no-op', async () => {
      await expect(h.factory('AccessToken').revokeByGrantId(id())).resolves.toBeUndefined();
    });
  });
}
