import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { Context } from 'koa';
import { type Adapter, errors } from 'oidc-provider';
import { routedPath } from '../http/rate-limits.ts';
import type { Scoped } from '../http/scoped.ts';
import { errorClass } from '../observability/causes.ts';
import type { Logger } from '../observability/logger.ts';
import { GRANTABLE_MODELS } from '../storage/grantable.ts';
import type { AdapterFactory, ReleasableAdapter } from '../storage/ports.ts';

/** The models whose artifacts are spent once: a second use is a replay. */
const SINGLE_USE_MODELS: ReadonlySet<string> = new Set(['AuthorizationCode', 'RefreshToken']);

/**
 * The adapters, with a code or refresh token presented twice at the same moment revoking its grant,
 * as one presented after its first use does.
 *
 * RFC 6749 (4.1.2, 10.4) and OAuth 2.1 (4.3.1) have a replayed code or rotated refresh token revoke
 * what its grant issued: one of the two holders is an attacker, and the provider cannot tell which.
 * oidc-provider does so when it reads the artifact already consumed. Two uses at the same moment
 * (on two instances, or one) both read it unconsumed; the adapters' consume() is atomic and lets
 * exactly one through, and oidc-provider answered the other invalid_grant without revoking: the
 * winner, the attacker as well as the client, kept a live token family (an outside review: 30 of
 * 30 overlapping uses). The refused use now revokes, before its answer leaves: the grant and every
 * artifact of it. Tokens the winner is still issuing are saved after that, but every use of a token
 * looks its grant up first, so they are dead from the start.
 */
export function revokingOnConcurrentReuse(factory: AdapterFactory): AdapterFactory {
  return (model) => {
    const adapter = factory(model);
    if (!SINGLE_USE_MODELS.has(model)) return adapter;
    const revokeGrant = async (grantId: string) => {
      await Promise.all([
        ...[...GRANTABLE_MODELS].map((name) => factory(name).revokeByGrantId(grantId)),
        factory('Grant').destroy(grantId),
      ]);
    };
    const guarded: Adapter = Object.create(adapter);
    guarded.consume = async (id) => {
      try {
        await consumeReleasably(adapter, id);
      } catch (error) {
        // A replay only when the adapter refused it (invalid_grant) and the artifact is there,
        // consumed by someone else meanwhile; a store that timed out or failed is no replay, and
        // the client's retry must find its grant alive. The grant is read from the artifact,
        // which a consumed one keeps until it expires.
        if (error instanceof errors.InvalidGrant) {
          const spent = await adapter.find(id).catch(() => undefined);
          if (spent?.consumed && typeof spent.grantId === 'string') await revokeGrant(spent.grantId);
        }
        throw error;
      }
    };
    return guarded;
  };
}

/** The releases of the consumes a token request attempted (releasingOnServerError), in order. */
const attempted = new AsyncLocalStorage<Array<() => Promise<void>>>();

function isReleasable(adapter: Adapter): adapter is ReleasableAdapter {
  return typeof (adapter as Partial<ReleasableAdapter>).release === 'function';
}

/**
 * A consume with a mark of its own, its release noted for the request before it is sent: whether a
 * consume whose answer never came landed is unknown, and releasing one that did not is harmless.
 */
function consumeReleasably(adapter: Adapter, id: string): Promise<void> {
  const releases = attempted.getStore();
  if (!releases || !isReleasable(adapter)) return adapter.consume(id);
  const mark = randomBytes(12).toString('base64url');
  releases.push(() => adapter.release(id, mark));
  return adapter.consume(id, mark);
}

/**
 * A code or refresh token spent by a token request that then failed on our side (a 5xx: a store
 * that timed out or dropped its connection, before or after the consume landed) is given back, so
 * that the client's retry, which a 503 asks for, works. Otherwise the retry found it consumed,
 * took it for a replay and revoked the grant: one lost Redis answer logged the person out of the
 * application (an outside review's fault injection). Nothing was issued by a request answered
 * with a 5xx, so giving the token back restores the state before it; the release clears only the
 * consume this request made (its mark), never another holder's. Releases run in the order of the
 * consumes, on the same connection, so one queued behind a consume that lands late still follows it.
 */
export function releasingOnServerError(tokenPath: string, logger: Logger): Scoped {
  return {
    // As the router matches it: /Token and /token/ reach the same endpoint.
    applies: (ctx, path) => ctx.method === 'POST' && routedPath(path) === tokenPath,
    middleware: async (ctx: Context, next) => {
      const releases: Array<() => Promise<void>> = [];
      let failed = true;
      try {
        await attempted.run(releases, next);
        failed = ctx.status >= 500;
      } finally {
        if (failed && releases.length > 0) await release(releases, logger);
      }
    },
  };
}

async function release(releases: Array<() => Promise<void>>, logger: Logger): Promise<void> {
  for (const give of releases) {
    try {
      await give();
    } catch (error) {
      // Its command may still have landed (an answer lost); if not, the client's retry reads the
      // token as spent and its grant is revoked, and the person logs in again.
      logger.warn(
        { reason: errorClass(error) },
        'a token request failed after spending its code or refresh token; giving it back failed too',
      );
    }
  }
}
