import { randomUUID } from 'node:crypto';
import type { Context } from 'koa';
import { errors } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLogger } from '../../src/observability/logger.ts';
import { releasingOnServerError, revokingOnConcurrentReuse } from '../../src/oidc/single-use.ts';
import type { AdapterFactory } from '../../src/storage/ports.ts';
import { createSqliteOidcAdapter } from '../../src/storage/sqlite/oidc-adapter.ts';
import { openSqliteBackend, type SqliteBackend } from '../storage/backends.ts';

/**
 * What revokes a grant when consume() fails (src/oidc/single-use.ts): a replay, found
 * consumed by someone else; not a store failure, after which the client's retry must work. The
 * concurrent replays themselves are test/production/same-moment.test.ts.
 */
describe('revoking on a refused consume', () => {
  let backend: SqliteBackend;
  let base: AdapterFactory;
  beforeAll(async () => {
    backend = await openSqliteBackend();
    base = createSqliteOidcAdapter(backend.database, backend.writes, { sweepIntervalMs: 0 }).factory;
  });
  afterAll(async () => backend?.close());

  /** The real adapters, the refresh token's consume failing once with `failure` first. */
  const failingOnce = (failure: () => Promise<void>): AdapterFactory => {
    let failed = false;
    return (model) => {
      const adapter = base(model);
      if (model !== 'RefreshToken') return adapter;
      return Object.assign(Object.create(adapter), {
        consume: async (id: string) => {
          if (failed) return adapter.consume(id);
          failed = true;
          await failure();
        },
      });
    };
  };
  /** A grant with a refresh token and an access token, through `factory`. */
  const grantWithTokens = async (factory: AdapterFactory) => {
    const [grantId, refreshToken, accessToken] = [randomUUID(), randomUUID(), randomUUID()];
    await factory('Grant').upsert(grantId, { kind: 'Grant', jti: grantId, accountId: 'u' }, 3600);
    await factory('RefreshToken').upsert(
      refreshToken,
      { kind: 'RefreshToken', jti: refreshToken, grantId },
      3600,
    );
    await factory('AccessToken').upsert(
      accessToken,
      { kind: 'AccessToken', jti: accessToken, grantId },
      3600,
    );
    const alive = async () => ({
      grant: (await factory('Grant').find(grantId)) !== undefined,
      accessToken: (await factory('AccessToken').find(accessToken)) !== undefined,
    });
    return { refreshToken, alive };
  };

  test('a store that failed is no replay: the grant stays, and the retry consumes', async () => {
    const factory = revokingOnConcurrentReuse(
      failingOnce(async () => {
        throw new Error('Command timed out');
      }),
    );
    const { refreshToken, alive } = await grantWithTokens(factory);
    await expect(factory('RefreshToken').consume(refreshToken)).rejects.toThrow('Command timed out');
    expect(await alive()).toEqual({ grant: true, accessToken: true });
    await factory('RefreshToken').consume(refreshToken);
  });

  test('a refusal of an artifact someone else consumed revokes its grant', async () => {
    // The other use gets there first: the artifact is consumed when this one's consume runs.
    const factory = revokingOnConcurrentReuse(
      failingOnce(async () => {
        throw new errors.InvalidGrant('RefreshToken already consumed');
      }),
    );
    const { refreshToken, alive } = await grantWithTokens(factory);
    await base('RefreshToken').consume(refreshToken);
    await expect(factory('RefreshToken').consume(refreshToken)).rejects.toThrow(errors.InvalidGrant);
    expect(await alive()).toEqual({ grant: false, accessToken: false });
  });
});

describe('giving back what a failed token request spent', () => {
  const scoped = releasingOnServerError('/token', createLogger({ level: 'silent' }));
  const applies = (method: string, path: string) => scoped.applies({ method } as Context, path);

  test('acts on every path the router takes for the token endpoint, and on nothing else', () => {
    for (const path of ['/token', '/token/', '/Token', '/TOKEN/']) expect(applies('POST', path)).toBe(true);
    expect(applies('GET', '/token')).toBe(false);
    expect(applies('POST', '/token/introspection')).toBe(false);
    expect(applies('POST', '/auth')).toBe(false);
  });
});
