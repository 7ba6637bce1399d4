import type { ClientConfig } from '../src/config/types.ts';
import { MINI_PROGRAM_CLIENT, RP, type StorageSetup } from '../test/helpers/bridge.ts';

export type Engine = 'bridge' | 'bare';

/** The ID-token signing algorithms the bridge offers, each measured on the token endpoint. */
export const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

export type BenchClient = ClientConfig & { client_id: string; client_secret: string };

/** One first-party client per algorithm (consent skipped), like an organisation's own applications. */
export function firstPartyClient(alg: Algorithm): BenchClient {
  return {
    ...RP,
    client_id: `bench-${alg.toLowerCase()}`,
    client_secret: `bench-${alg.toLowerCase()}-secret-0123456789abcdef`,
    id_token_signed_response_alg: alg,
    first_party: true,
  };
}

/**
 * A third-party client: the person confirms the consent page at their first login, which is then
 * remembered, and at every login that demands prompt=consent.
 */
export const CONSENT_CLIENT: BenchClient = {
  ...RP,
  client_id: 'bench-consent',
  client_secret: 'bench-consent-secret-0123456789abcdef',
  id_token_signed_response_alg: 'RS256',
};

export const BENCH_CLIENTS: BenchClient[] = [...ALGORITHMS.map(firstPartyClient), CONSENT_CLIENT];

/** The mini program's public client (token exchange of wx.login codes); the bridge's alone. */
export const MINI_PROGRAM_BENCH_CLIENT: ClientConfig = {
  ...MINI_PROGRAM_CLIENT,
  client_id: 'bench-mini-program',
};

/** What the parent tells a server process to start (sent over IPC: keys never go through argv or env). */
export interface ServerSpec {
  engine: Engine;
  storage: StorageSetup;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  /** The WeChat sandbox (bridge only). */
  sandboxUrl: string;
  jwks: { keys: Record<string, unknown>[] };
  cookieKeys: string[];
  clients: ClientConfig[];
  /** The bridge's log (info level, as in production); scanned for errors after the run. */
  logFile: string;
  /** The bridge's periodic store probe (StartOptions.dependencyProbeMs); its default when absent. */
  storeProbeMs?: number;
}
