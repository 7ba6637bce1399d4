import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { PACKAGE_ROOT } from '../package-root.ts';
import { checkClientMetadata, developmentJwks } from './client-metadata.ts';
import { type EnvOverrides, readEnvOverrides } from './env.ts';
import { Findings, issueMessages } from './findings.ts';
import { checkManagementListener } from './listeners.ts';
import {
  checkClientRedirects,
  checkEnvironmentPolicy,
  checkOfficialAccountCallback,
  checkTransportPolicy,
  checkWeChatTransport,
} from './policy.ts';
import { entries, field } from './raw.ts';
import {
  type ClientEntry,
  type ConfigFile,
  clientSchema,
  configFileSchema,
  dataDirSchema,
  ttlSchema,
} from './schema.ts';
import { type ResolvedSecrets, resolveFileSecrets } from './secret-ref.ts';
import { knownKeysAt } from './suggest.ts';
import type { ClientConfig, Config } from './types.ts';

export interface LoadConfigOptions {
  /** Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The config file; default env CONFIG_FILE, else config/default.yaml in the package root. */
  file?: string;
  /** Called once per development-only setting in use (literal secrets, sandbox, generated keys...). */
  onWarning?: (message: string) => void;
}

/** The configuration cannot be used; `problems` holds one line per problem, as does the message. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly file: string;
  readonly problems: readonly string[];

  constructor(file: string, problems: readonly string[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`Invalid configuration (${file}), ${count}:\n${problems.map((line) => `  ${line}`).join('\n')}`);
    this.file = file;
    this.problems = problems;
  }
}

/**
 * Reads the config file, applies the environment overrides, resolves the secret references and
 * checks everything, reporting every problem at once in a ConfigError.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  const file = configFilePath(env, options.file);
  const production = env.NODE_ENV === 'production';
  const raw = await readConfigFile(file);

  const findings = new Findings();
  const parsed = configFileSchema.safeParse(raw, { error: issueMessages });
  if (!parsed.success)
    findings.addIssues(parsed.error.issues, [], (path) => knownKeysAt(configFileSchema, path));
  const overrides = readEnvOverrides(env, findings);
  const secrets = await resolveFileSecrets(raw, { env, production, baseDir: dirname(file), findings });
  checkEnvironmentPolicy(raw, production, findings);
  checkTransportPolicy(raw, overrides.issuer, production, findings);
  await checkClientsWithProvider({ raw, parsed, secrets, overrides }, findings);
  if (parsed.success) {
    const { data } = parsed;
    overriddenSettings(raw, overrides, findings);
    unusedLoginApps(data.wechat.apps, findings);
    if (production && data.wechat.apps.length === 0)
      findings.warn(
        'wechat.apps',
        'none configured: nobody can log in (each needs its kind, appid and AppSecret)',
      );
    data.clients.forEach((client, index) => {
      // A public client proves nothing with a secret, and one kept in a browser or an app is no secret.
      if (client.token_endpoint_auth_method === 'none' && client.client_secret !== undefined)
        findings.warn(
          `clients[${index}].client_secret`,
          'a public client (token_endpoint_auth_method: none) is never asked for it: remove it, or make the client confidential',
        );
    });
    // An empty DATABASE_URL (a secret that resolved to nothing) counts as unset, and would give each
    // replica behind a balancer a store of its own: legitimate for one machine, said at every start.
    // One set but refused (reported as a problem) is not "not set": saying so contradicted the problem.
    const databaseUrlSet = Boolean(env.DATABASE_URL?.trim());
    if (production && !(overrides.databaseUrl ?? data.storage.databaseUrl) && !databaseUrlSet) {
      findings.warn(
        'storage.databaseUrl',
        `not set (nor DATABASE_URL): the embedded store, for one instance only, in ${resolve(data.dataDir)}`,
      );
    }
    const issuer = issuerOf(data, overrides);
    const appKinds = data.wechat.apps.map((app) => app.kind);
    checkOfficialAccountCallback({ issuer, appKinds, sandbox: data.sandbox.enabled, production }, findings);
    const apiBaseUrl = overrides.apiBaseUrl ?? data.wechat.apiBaseUrl;
    checkWeChatTransport({ apiBaseUrl, sandbox: data.sandbox.enabled, production }, findings);
    checkClientRedirects(data.clients, production, findings);
    checkManagementListener(
      {
        port: { file: data.port, env: overrides.port },
        management: {
          port: data.management?.port,
          host: data.management?.host,
          envPort: overrides.managementPort,
        },
      },
      findings,
      production,
    );
  }

  for (const warning of findings.warnings) options.onWarning?.(warning);
  if (!parsed.success || findings.problems.length > 0) throw new ConfigError(file, findings.problems);
  return effectiveConfig(parsed.data, overrides, secrets, production);
}

/** The file `loadConfig` reads: the option, else env CONFIG_FILE (relative to the working directory). */
export function configFilePath(env: NodeJS.ProcessEnv, file?: string): string {
  const chosen = file ?? (env.CONFIG_FILE?.trim() || undefined);
  return chosen === undefined ? join(packageRoot(), 'config', 'default.yaml') : resolve(chosen);
}

/** The folder holding package.json (see src/package-root.ts). */
export function packageRoot(): string {
  return PACKAGE_ROOT;
}

async function readConfigFile(file: string): Promise<unknown> {
  const format = extname(file).toLowerCase();
  if (!['.yaml', '.yml', '.json'].includes(format)) {
    throw new ConfigError(file, ['config file: must end in .yaml, .yml or .json']);
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`;
    throw new ConfigError(file, [`config file: ${reason}`]);
  }
  try {
    // An empty file is a file of defaults.
    return (format === '.json' ? JSON.parse(text) : parseYaml(text)) ?? {};
  } catch (error) {
    throw new ConfigError(file, [`config file: ${syntaxProblem(error, format)}`]);
  }
}

/** Where the syntax error is, without the parser's excerpt of the text: it may hold a literal secret. */
function syntaxProblem(error: unknown, format: string): string {
  if (error instanceof YAMLParseError) {
    const at = error.linePos?.[0];
    return `invalid YAML (${error.code})${at ? ` at line ${at.line}, column ${at.col}` : ''}`;
  }
  const at = error instanceof Error ? /\(line (\d+) column (\d+)\)/.exec(error.message) : null;
  return `invalid ${format === '.json' ? 'JSON' : 'YAML'}${at ? ` at line ${at[1]}, column ${at[2]}` : ''}`;
}

/**
 * The file's own values that the environment replaces with other ones, each said at check and at
 * start: a compose file's ISSUER default, or an image's PORT, silently replaced what the file said,
 * and discovery named a host the operator never wrote. Not the store URLs, which may hold passwords.
 */
function overriddenSettings(raw: unknown, overrides: EnvOverrides, findings: Findings): void {
  const settings: Array<[variable: string, field: string, value: unknown, fileValue: unknown]> = [
    ['ISSUER', 'issuer', overrides.issuer, field(raw, 'issuer')],
    ['PORT', 'port', overrides.port, field(raw, 'port')],
    ['MANAGEMENT_PORT', 'management.port', overrides.managementPort, field(field(raw, 'management'), 'port')],
    [
      'WECHAT_OPEN_BASE_URL',
      'wechat.openBaseUrl',
      overrides.openBaseUrl,
      field(field(raw, 'wechat'), 'openBaseUrl'),
    ],
    [
      'WECHAT_API_BASE_URL',
      'wechat.apiBaseUrl',
      overrides.apiBaseUrl,
      field(field(raw, 'wechat'), 'apiBaseUrl'),
    ],
  ];
  for (const [variable, path, value, fileValue] of settings) {
    if (value === undefined || fileValue === undefined || value === fileValue) continue;
    findings.warn(
      path,
      `${JSON.stringify(fileValue)} in the file is overridden by ${variable}: ${JSON.stringify(value)}`,
    );
  }
}

/**
 * A second website or Official Account app: logins start with the first of its kind only (the QR
 * page, the redirect inside WeChat); a later one only finishes the logins already under way with it
 * (while moving to another app, say). Said, since it looks like an app in use.
 */
function unusedLoginApps(apps: ReadonlyArray<{ kind: string }>, findings: Findings): void {
  for (const kind of ['website', 'official_account']) {
    const indexes = apps.flatMap((app, index) => (app.kind === kind ? [index] : []));
    for (const index of indexes.slice(1)) {
      findings.warn(
        `wechat.apps[${index}]`,
        `another ${kind} app: logins start with the first (wechat.apps[${indexes[0]}]) only, and this one only finishes logins already under way with it`,
      );
    }
  }
}

/** The issuer: the environment's, else the file's, else http://localhost on the port listened on. */
const issuerOf = (file: Pick<ConfigFile, 'issuer' | 'port'>, overrides: EnvOverrides) =>
  overrides.issuer ?? file.issuer ?? `http://localhost:${overrides.port ?? file.port}`;

function effectiveConfig(
  file: ConfigFile,
  overrides: EnvOverrides,
  secrets: ResolvedSecrets,
  production: boolean,
): Config {
  const port = overrides.port ?? file.port;
  const host = file.host ?? (production ? '0.0.0.0' : '127.0.0.1');
  const managementPort = overrides.managementPort ?? file.management?.port;
  return {
    production,
    port,
    host,
    ...(managementPort !== undefined && {
      management: { port: managementPort, host: file.management?.host ?? host },
    }),
    issuer: issuerOf(file, overrides),
    trustProxy: file.trustProxy,
    behindTlsProxy: file.behindTlsProxy,
    dataDir: resolve(file.dataDir),
    log: file.log,
    storage: {
      databaseUrl: overrides.databaseUrl ?? file.storage.databaseUrl,
      redisUrl: overrides.redisUrl ?? file.storage.redisUrl,
      redisKeyPrefix: file.storage.redisKeyPrefix,
    },
    wechat: {
      openBaseUrl: overrides.openBaseUrl ?? file.wechat.openBaseUrl,
      apiBaseUrl: overrides.apiBaseUrl ?? file.wechat.apiBaseUrl,
      timeoutMs: file.wechat.timeoutMs,
      apps: file.wechat.apps.map((app, index) => ({
        kind: app.kind,
        appid: app.appid,
        name: app.name ?? app.appid,
        secret: resolvedAt(secrets.appSecrets, index),
        ...(app.kind === 'official_account' ? { scopePolicy: app.scopePolicy ?? 'base_then_userinfo' } : {}),
      })),
      mpVerifyTokens: file.wechat.mpVerifyTokens,
      miniProgram: file.wechat.miniProgram,
    },
    oidc: { jwks: secrets.jwks, cookieKeys: secrets.cookieKeys, ttl: file.oidc.ttl },
    limits: file.limits,
    avatars: file.avatars,
    account: file.account,
    shutdown: file.shutdown,
    clients: file.clients.map((client, index) => effectiveClient(client, secrets.clientSecrets.get(index))),
    sandbox: file.sandbox,
    demo: file.demo,
  };
}

/** A client as oidc-provider takes it: its client_secret resolved, the redirect defaults settled. */
function effectiveClient(client: ClientEntry, secret: string | undefined): ClientConfig {
  const { client_secret: _reference, ...registered } = client;
  const metadata = withoutRedirectDefaults(registered);
  // The passthrough members are JSON values oidc-provider checks (checkClientsWithProvider); their
  // finer types (algorithm names...) are its business.
  return (secret === undefined ? metadata : { ...metadata, client_secret: secret }) as ClientConfig;
}

/**
 * Every client that passes our schema, put to oidc-provider (client-metadata.ts), even when other
 * parts of the file do not, so that its refusals are reported with every other problem. A client
 * whose secret did not resolve (reported) is checked with a stand-in secret; a repeated client_id
 * (reported) is checked once. Skipped when the configured signing keys did not resolve (reported):
 * the algorithms a client may choose depend on them.
 */
async function checkClientsWithProvider(
  input: {
    raw: unknown;
    parsed: ReturnType<typeof configFileSchema.safeParse>;
    secrets: ResolvedSecrets;
    overrides: EnvOverrides;
  },
  findings: Findings,
): Promise<void> {
  const { raw, parsed, secrets } = input;
  const clients: Array<[number, ClientConfig]> = [];
  const ids = new Set<string>();
  for (const [index, entry] of entries(field(raw, 'clients'))) {
    const client = clientSchema.safeParse(entry);
    if (!client.success || ids.has(client.data.client_id)) continue;
    ids.add(client.data.client_id);
    const secret = secrets.clientSecrets.get(index) ?? (client.data.client_secret && UNRESOLVED_SECRET);
    clients.push([index, effectiveClient(client.data, secret)]);
  }
  if (clients.length === 0) return;

  const configuredKeys = field(field(raw, 'oidc'), 'jwks') !== undefined;
  if (configuredKeys && secrets.jwks === undefined) return;
  const rawDataDir = field(raw, 'dataDir');
  const dataDir = parsed.success
    ? parsed.data.dataDir
    : typeof rawDataDir === 'string' && rawDataDir !== ''
      ? rawDataDir
      : dataDirSchema.parse(undefined);
  const jwks = secrets.jwks ?? (await developmentJwks(resolve(dataDir)));
  const data = parsed.success ? parsed.data : undefined;
  const issuer = data ? issuerOf(data, input.overrides) : 'http://localhost:3000';
  await checkClientMetadata(
    {
      clients,
      jwks,
      keysFrom: configuredKeys ? 'oidc.jwks' : join(resolve(dataDir), 'jwks.json'),
      settings: { issuer, trustProxy: false, oidc: { ttl: data?.oidc.ttl ?? ttlSchema.parse({}) } },
    },
    findings,
  );
}

/** Stands in for a client_secret that did not resolve (a reported problem), for the client check. */
const UNRESOLVED_SECRET = 'unresolved-client-secret-0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * oidc-provider gives every client response_types ["code"] unless told otherwise, and "code" needs
 * redirect_uris. A client without a redirect-based grant (a mini program exchanging wx.login codes)
 * has neither, so its response_types default to none.
 */
function withoutRedirectDefaults<T extends { grant_types?: string[]; response_types?: string[] }>(
  client: T,
): T {
  const grants = client.grant_types;
  if (client.response_types !== undefined || grants === undefined) return client;
  if (grants.includes('authorization_code') || grants.includes('implicit')) return client;
  return { ...client, response_types: [] };
}

function resolvedAt<Value>(values: Map<number, Value>, index: number): Value {
  const value = values.get(index);
  // Unreachable: an unresolved secret is a recorded problem, and problems stop loading before this.
  if (value === undefined) throw new Error(`secret ${index} was not resolved`);
  return value;
}
