import { SECTION_DEFAULTS } from '../src/config/defaults.ts';
import { Secret } from '../src/config/secret.ts';
import type { Config, RateLimitRule } from '../src/config/types.ts';
import { baseConfig, MINI_PROGRAM_APP, WEBSITE_APP } from '../test/helpers/bridge.ts';
import type { ServerSpec } from './spec.ts';

/**
 * The bridge's configuration for a benchmark run: the flow tests' configuration with the benchmark's
 * clients, the run's shared keys, and what production runs with: info-level logging and rate limits
 * on (the tests turn them off). The limits are set where no run reaches them, since the whole load
 * comes from one address, so that their cost is counted without their refusals.
 */
const UNREACHABLE_LIMIT: RateLimitRule = { points: 1_000_000_000, durationSeconds: 60 };

export function bridgeConfig(spec: ServerSpec): Config {
  const base = baseConfig({
    dataDir: spec.dataDir,
    databaseUrl: spec.databaseUrl,
    redisUrl: spec.redisUrl,
    redisKeyPrefix: spec.redisKeyPrefix,
    sandboxUrl: spec.sandboxUrl,
    apps: [WEBSITE_APP, MINI_PROGRAM_APP],
  });
  return {
    ...base,
    // The defaults: an access line at info for failed requests only.
    log: { level: 'info', requests: 'failures' },
    limits: {
      ...SECTION_DEFAULTS.limits,
      rateLimits: {
        enabled: true,
        interaction: UNREACHABLE_LIMIT,
        callback: UNREACHABLE_LIMIT,
        token: UNREACHABLE_LIMIT,
        miniProgram: UNREACHABLE_LIMIT,
      },
    },
    clients: spec.clients,
    oidc: {
      ...base.oidc,
      jwks: spec.jwks,
      cookieKeys: spec.cookieKeys.map((key) => new Secret(key)),
    },
  };
}
