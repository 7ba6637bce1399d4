import { type Adapter, errors } from 'oidc-provider';
import { GRANTABLE_MODELS } from '../storage/grantable.ts';
import type { AdapterFactory } from '../storage/ports.ts';

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
        await adapter.consume(id);
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
