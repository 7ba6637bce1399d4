import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Provider from 'oidc-provider';
import { errors } from 'oidc-provider';
import type { Views } from '../http/views.ts';
import { createLogger } from '../observability/logger.ts';
import {
  type ClientRefusal,
  clientRefusals,
  createProvider,
  type ProviderSettings,
} from '../oidc/provider.ts';
import { TOKEN_EXCHANGE_GRANT_TYPE } from '../oidc/token-exchange/constants.ts';
import type { AdapterFactory } from '../storage/ports.ts';
import type { FieldPath, Findings } from './findings.ts';
import { clientSchema } from './schema.ts';
import { Secret } from './secret.ts';
import type { ClientConfig } from './types.ts';

/**
 * Client metadata as oidc-provider itself judges it. It checks a configured client only at the
 * client's first use, and answers that request (a person's login) with the refusal; here the
 * configured clients are put to the same provider, configured as the server configures it (its
 * features, scopes, grant types, algorithms and the signing keys they depend on), so that
 * check-config and the start report every refused client at once, naming the client and the field.
 * Nothing of these checks is repeated here: the refusal is oidc-provider's, in its own words.
 */

export interface ClientCheckInput {
  /** The configured clients, each with its index in the file's `clients`, as the server registers them. */
  clients: ReadonlyArray<readonly [number, ClientConfig]>;
  /** The signing keys (oidc.jwks), which decide the algorithms a client may choose. */
  jwks: { keys: Record<string, unknown>[] };
  /** Where the keys come from, to name should oidc-provider refuse them: oidc.jwks or a generated file. */
  keysFrom: string;
  settings: ProviderSettings;
}

/** Records a problem for each configured client oidc-provider refuses. */
export async function checkClientMetadata(input: ClientCheckInput, findings: Findings): Promise<void> {
  let provider: Provider;
  try {
    provider = createCheckingProvider(
      input.settings,
      input.clients.map(([, client]) => client),
      input.jwks,
    );
  } catch (error) {
    // Its configuration is ours, and checked; what is left to refuse here are the signing keys.
    findings.problem(input.keysFrom, `oidc-provider refuses the signing keys: ${messageOf(error)}`);
    return;
  }
  const indexes = new Map(input.clients.map(([index, client]) => [client.client_id, index]));
  for (const refusal of await clientRefusals(provider, [...indexes.keys()])) {
    const [path, message] = refusalProblem(refusal, indexes.get(refusal.clientId));
    findings.problem(path, message);
  }
}

/**
 * A refusal as a problem line's path and message: `clients[2].redirect_uris`, and the client named
 * with oidc-provider's words. A client the server registers itself (the account page's, the demo's)
 * has no index: it is named by its client_id alone.
 */
export function refusalProblem(refusal: ClientRefusal, index: number | undefined): [FieldPath, string] {
  const field = metadataNamed(refusal.reason);
  const message = `oidc-provider refuses client "${refusal.clientId}": ${refusal.reason}`;
  if (index === undefined) return [`client "${refusal.clientId}" (registered by the server)`, message];
  return [['clients', index, ...(field === undefined ? [] : [field])], message];
}

/** The client's registration names, standard and ours. */
const METADATA_NAMES: ReadonlySet<string> = new Set(Object.keys(clientSchema.shape));

/**
 * The field a refusal is about: the first registration name in oidc-provider's description, which
 * begins with it ("scope must only contain...", "jwks or jwks_uri is mandatory...") when it names one.
 */
function metadataNamed(reason: string): string | undefined {
  return reason.match(/[a-z][a-z0-9_]*/g)?.find((word) => METADATA_NAMES.has(word));
}

/**
 * createProvider's provider with the server's clients and keys, and the grant the server adds
 * (the mini program's token exchange, which setUpMiniPrograms registers), serving nothing: no
 * store, no account, no page, no log.
 */
function createCheckingProvider(
  settings: ProviderSettings,
  clients: ClientConfig[],
  jwks: ClientCheckInput['jwks'],
): Provider {
  const provider = createProvider({
    config: settings,
    clients,
    keys: { jwks, cookieKeys: [new Secret('the client check signs no cookie')] },
    adapter: storesNothing,
    findAccount: async () => undefined,
    views: rendersNothing,
    logger: createLogger({ level: 'silent' }),
    rememberedScopes: async () => new Set(),
  });
  provider.registerGrantType(TOKEN_EXCHANGE_GRANT_TYPE, () => {
    throw new errors.UnsupportedGrantType();
  });
  return provider;
}

const storesNothing: AdapterFactory = () => ({
  upsert: async () => {},
  find: async () => undefined,
  findByUid: async () => undefined,
  findByUserCode: async () => undefined,
  consume: async () => {},
  destroy: async () => {},
  revokeByGrantId: async () => {},
});

const rendersNothing: Views = { render: () => '', stylesheet: { body: '', etag: '' } };

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The signing keys of a development configuration (no oidc.jwks): those generated into dataDir
 * by an earlier start (jwks.json), else keys of the kinds the server generates on its first start
 * (src/oidc/keys.ts: RSA, EC P-256 and Ed25519), made here in memory and written nowhere.
 */
export async function developmentJwks(dataDir: string): Promise<ClientCheckInput['jwks']> {
  const existing = await readFile(join(dataDir, 'jwks.json'), 'utf8').then(
    (text) => JSON.parse(text) as unknown,
    () => undefined,
  );
  if (isJwks(existing)) return existing;
  generated ??= {
    keys: [
      privateJwk(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'RS256'),
      privateJwk(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'ES256'),
      privateJwk(generateKeyPairSync('ed25519').privateKey, 'EdDSA'),
    ],
  };
  return generated;
}

let generated: ClientCheckInput['jwks'] | undefined;

function privateJwk(key: import('node:crypto').KeyObject, alg: string): Record<string, unknown> {
  return { ...key.export({ format: 'jwk' }), use: 'sig', alg, kid: randomUUID() };
}

function isJwks(value: unknown): value is ClientCheckInput['jwks'] {
  const keys = (value as { keys?: unknown } | null | undefined)?.keys;
  return (
    Array.isArray(keys) && keys.length > 0 && keys.every((key) => typeof key === 'object' && key !== null)
  );
}
