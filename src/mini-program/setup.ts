import type Router from '@koa/router';
import type Provider from 'oidc-provider';
import type { FindAccount } from 'oidc-provider';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { AccountNotifier } from '../accounts/events.ts';
import type { Secret } from '../config/secret.ts';
import type { Config } from '../config/types.ts';
import { spendPoint } from '../http/rate-limits.ts';
import type { Logger } from '../observability/logger.ts';
import { registerTokenExchange } from '../oidc/token-exchange/grant.ts';
import type { Stores } from '../storage/ports.ts';
import type { WeChatCallEvent } from '../upstream/wechat/api-call.ts';
import { createAppTokenCache, refreshLockSeconds } from '../upstream/wechat/app-token.ts';
import { createMiniProgramConnector, type MiniProgramConnector } from '../upstream/wechat/mini-program.ts';
import { createMiniProgramApi } from '../upstream/wechat/mini-program-api.ts';
import { createGrantIdentityStore } from './grant-identities.ts';
import { createMiniProgramRouter } from './router.ts';
import { createSealer } from './sealer.ts';
import { createSessionKeyStore } from './session-keys.ts';

export interface MiniProgramSetupDeps {
  config: Config;
  provider: Provider;
  stores: Stores;
  /** The provider's cookie keys: the sealing keys of stored session keys and app tokens derive from them. */
  cookieKeys: readonly Secret[];
  /** The provider's own (with the account cache), for the ID tokens the token exchange issues. */
  findAccount: FindAccount;
  logger: Logger;
  now: () => Date;
  /** Tells relying parties of identity changes (a login linking a new app, a phone recovery). */
  notifier?: AccountNotifier | undefined;
  /** Told of every WeChat API call (jscode2session, stable_token...), as the browser connectors' client is. */
  onWeChatCall?: (event: WeChatCallEvent) => void;
  /** The endpoints' per-person limit (`limits.rateLimits.miniProgram`); absent when limits are off. */
  rateLimiter?: RateLimiterAbstract | undefined;
  /** Told of each call the limit refuses. */
  onRateLimited?: () => void;
}

/**
 * Everything mini programs need, wired once: the connectors of the configured mini_program apps
 * (sharing one app-token cache in the KeyValueStore), the session-key store, the token-exchange
 * grant on the provider, and the router of the endpoints the mini program calls.
 */
export function setUpMiniPrograms(deps: MiniProgramSetupDeps): { router: Router } {
  const { config, provider, stores, logger, now, rateLimiter: limiter } = deps;
  const api = createMiniProgramApi({
    apiBaseUrl: config.wechat.apiBaseUrl,
    timeoutMs: config.wechat.timeoutMs,
    onCall: deps.onWeChatCall,
  });
  const sealer = createSealer(deps.cookieKeys);
  const appTokens = createAppTokenCache({
    kv: stores.kv,
    codec: sealer,
    fetch: (app, forceRefresh) => api.stableToken(app, forceRefresh),
    lockSeconds: refreshLockSeconds(config.wechat.timeoutMs),
  });
  const connectors = new Map<string, MiniProgramConnector>();
  for (const app of config.wechat.apps) {
    if (app.kind === 'mini_program') {
      connectors.set(app.appid, createMiniProgramConnector({ app, api, appTokens }));
    }
  }
  const miniProgram = (appid: string) => connectors.get(appid);
  const sessionKeys = createSessionKeyStore({
    kv: stores.kv,
    sealer,
    ttlSeconds: config.wechat.miniProgram.sessionKeyTtl,
  });
  const grantIdentities = createGrantIdentityStore(stores.kv);

  registerTokenExchange(provider, {
    miniProgram,
    sessionKeys,
    grantIdentities,
    db: stores.db,
    findAccount: deps.findAccount,
    logger,
    now,
    notifier: deps.notifier,
  });
  const router = createMiniProgramRouter({
    provider,
    db: stores.db,
    sessionKeys,
    grantIdentities,
    miniProgram,
    logger,
    now,
    notifier: deps.notifier,
    encryptedDataMaxAge: config.wechat.miniProgram.encryptedDataMaxAge,
    maxBodyBytes: config.limits.maxBodyBytes,
    rateLimit: limiter && ((key: string) => spendPoint(limiter, key)),
    onRateLimited: deps.onRateLimited,
  });
  return { router };
}
