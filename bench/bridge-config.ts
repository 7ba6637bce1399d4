import { Secret } from '../src/config/secret.ts';
import type { Config } from '../src/config/types.ts';
import { baseConfig, WEBSITE_APP } from '../test/helpers/bridge.ts';
import type { ServerSpec } from './spec.ts';

/**
 * The bridge's configuration for a benchmark run: the flow tests' configuration with the benchmark's
 * clients, the run's shared keys, and info-level logging as in production.
 */
export function bridgeConfig(spec: ServerSpec): Config {
  const base = baseConfig({
    dataDir: spec.dataDir,
    databaseUrl: spec.databaseUrl,
    redisUrl: spec.redisUrl,
    redisKeyPrefix: spec.redisKeyPrefix,
    sandboxUrl: spec.sandboxUrl,
    apps: [WEBSITE_APP],
  });
  return {
    ...base,
    log: { level: 'info', pretty: false },
    clients: spec.clients,
    oidc: {
      ...base.oidc,
      jwks: spec.jwks,
      cookieKeys: spec.cookieKeys.map((key) => new Secret(key)),
    },
  };
}
