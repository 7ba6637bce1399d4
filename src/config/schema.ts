import { z } from 'zod';
import { ACCOUNT_PAGE_CLIENT_ID } from '../account-page/client.ts';
import { RECENT_LOGIN_DEFAULT_SECONDS } from '../account-page/recent-login.ts';
import { HEADERS_TIMEOUT_DEFAULT_SECONDS } from '../http/keep-alive.ts';
import { ENGINE_MAX_BODY_BYTES } from '../http/request-limits.ts';
import { DRAIN_TIMEOUT_DEFAULT_SECONDS } from '../http/shutdown.ts';
import { parseRedisTarget } from '../storage/redis/target.ts';
import { entries, field } from './raw.ts';

/**
 * The configuration file, as written by people: one schema, every option documented where it is
 * defined. `loadConfig()` turns its output into the effective `Config` (src/config/types.ts): it
 * applies environment overrides, resolves secret references and applies the production policy,
 * which need the environment and so are not part of this context-free schema.
 */

/** WeChat AppIDs are "wx" followed by 16 lowercase hex digits. */
export const APPID_PATTERN = /^wx[0-9a-f]{16}$/;

const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

// ---------------------------------------------------------------------------------------------
// URL rules (shared with the environment overrides in env.ts)

function parseUrl(value: string): URL | undefined {
  return URL.canParse(value) ? new URL(value) : undefined;
}

function isHttpUrl(value: string): boolean {
  const url = parseUrl(value);
  return url !== undefined && (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '';
}

/** Any absolute http(s) URL (redirect URIs, logo URIs...). */
export const httpUrlSchema = z.string().refine(isHttpUrl, 'must be an absolute http(s) URL');

/** No user name or password before the host (`https://user:password@host`). */
function hasNoCredentials(value: string): boolean {
  const url = parseUrl(value);
  return url === undefined || (url.username === '' && url.password === '');
}

/**
 * An http(s) origin with an optional path, no query, fragment or credentials, no trailing slash
 * kept. `credentials` says why credentials are refused in this URL.
 */
function baseUrl(credentials: string) {
  return (
    httpUrlSchema
      .refine((value) => !value.includes('?'), 'must not have a query')
      .refine((value) => !value.includes('#'), 'must not have a fragment')
      .refine(hasNoCredentials, `must not contain credentials (user:password@): ${credentials}`)
      // Callers append "/sns/oauth2/..." to it: one canonical form avoids "//" in upstream URLs.
      .transform((value) => value.replace(/\/+$/, ''))
  );
}

/** wechat.openBaseUrl (WECHAT_OPEN_BASE_URL): where browsers are sent to authorize. */
export const openBaseUrlSchema = baseUrl(
  "it is copied into the QR code frame and the redirects people's browsers receive",
);

/** wechat.apiBaseUrl (WECHAT_API_BASE_URL): where the server calls WeChat's API. */
export const apiBaseUrlSchema = baseUrl(
  'WeChat calls go to its origin and path and would never send them, while check-config would ' +
    'print them',
);

/** The OIDC issuer: compared byte for byte by relying parties, so it is checked, not normalised. */
export const issuerSchema = httpUrlSchema
  .refine((value) => !value.includes('?'), 'must not have a query')
  .refine((value) => !value.includes('#'), 'must not have a fragment')
  .refine((value) => !value.endsWith('/'), 'must not end with "/"')
  .refine(hasNoCredentials, 'must not contain credentials');

/**
 * Why a store URL does not parse, when its user name or password is the cause: a / ? or # pasted
 * in unencoded ends the host part early, so the URL names no host, or a port that is no number
 * (docker-compose.yml writes POSTGRES_PASSWORD into DATABASE_URL as it is, and about half of
 * `openssl rand -base64 32`'s strings hold a /). Without this the operator read "must be a
 * postgres:// URL" about one starting with postgres://. Never quotes the URL: it holds the password.
 */
export const UNENCODED_CREDENTIALS =
  'does not parse as a URL: a / ? # or @ in its user name or password must be percent-encoded ' +
  '(%2F %3F %23 %40), or use a password without them (such as `openssl rand -hex 32`)';

/**
 * Whether `parses` takes the URL once the user info (up to its last @) is percent-encoded, where
 * it refused it as written: then the credentials are to blame, and not, say, an @ in a query.
 */
function credentialsToBlame(value: string, parses: (url: string) => boolean): boolean {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)(.*)@([^@]*)$/s.exec(value);
  if (!match) return false;
  const [, scheme, userinfo = '', rest] = match;
  const [user = '', ...password] = userinfo.split(':');
  const encoded = [user, password.join(':')].map(encodeURIComponent).join(':');
  return /[/?#]/.test(userinfo) && parses(`${scheme}${encoded}@${rest}`);
}

/** What is wrong with a DATABASE_URL, or undefined. */
function databaseUrlProblem(value: string): string | undefined {
  if (!/^postgres(ql)?:\/\//i.test(value)) return 'must be a postgres:// or postgresql:// URL';
  if (URL.canParse(value)) return undefined;
  return credentialsToBlame(value, URL.canParse) ? UNENCODED_CREDENTIALS : 'does not parse as a URL';
}

export const databaseUrlSchema = z.string().superRefine((value, ctx) => {
  const message = databaseUrlProblem(value);
  if (message !== undefined) ctx.addIssue({ code: 'custom', message });
});

/** One server, a cluster or Sentinel (storage/redis/target.ts); the message says what is wrong. */
export const redisUrlSchema = z.string().superRefine((value, ctx) => {
  try {
    parseRedisTarget(value);
  } catch (error) {
    const blame = credentialsToBlame(value, isRedisTarget);
    ctx.addIssue({ code: 'custom', message: blame ? UNENCODED_CREDENTIALS : (error as Error).message });
  }
});

function isRedisTarget(url: string): boolean {
  try {
    parseRedisTarget(url);
    return true;
  } catch {
    return false;
  }
}

/** A TCP port to listen on. */
export const portSchema = z.int().min(1).max(65535);

// ---------------------------------------------------------------------------------------------
// Secret references

/**
 * Where a secret comes from. `value` is a literal in the config file: development only
 * (production refuses it, development warns about it).
 */
export type SecretRef<Literal = string> =
  | { source: 'env'; name: string }
  | { source: 'file'; path: string }
  | { source: 'value'; value: Literal };

function secretRef<Literal>(literal: z.ZodType<Literal>) {
  return z
    .strictObject(
      {
        env: z
          .string()
          .regex(ENV_NAME_PATTERN, 'must be an environment variable name')
          .optional()
          .describe('Name of the environment variable holding the secret (surrounding whitespace trimmed).'),
        file: z
          .string()
          .min(1)
          .optional()
          .describe(
            "Path of a file holding the secret (surrounding whitespace trimmed); relative to the config file's folder.",
          ),
        value: literal.optional().describe('The secret itself. Development only: production refuses it.'),
      },
      {
        error: (issue) =>
          issue.code === 'invalid_type'
            ? 'must be { env: NAME }, { file: PATH } or { value: ... }'
            : undefined,
      },
    )
    .refine(
      (ref) => [ref.env, ref.file, ref.value].filter((part) => part !== undefined).length === 1,
      'must have exactly one of env, file or value',
    )
    .transform((ref): SecretRef<Literal> => {
      if (ref.env !== undefined) return { source: 'env', name: ref.env };
      if (ref.file !== undefined) return { source: 'file', path: ref.file };
      return { source: 'value', value: ref.value as Literal };
    });
}

/** A text secret: `{ env: NAME }`, `{ file: PATH }` or (development) `{ value: "..." }`. */
export const secretRefSchema = secretRef(z.string().min(1));

/** A client_secret may also be a bare string: the same as `{ value: "..." }`. */
export const clientSecretRefSchema = z.preprocess(
  (input) => (typeof input === 'string' ? { value: input } : input),
  secretRefSchema,
);

/**
 * The signing keys: a JSON JWKS with private keys, from an environment variable or a file, or
 * (development) inline as `{ value: { keys: [...] } }` or a JSON string. The keys themselves are
 * checked once resolved (jwks.ts).
 */
export const jwksRefSchema = secretRef(z.union([z.string().min(1), z.record(z.string(), z.unknown())]));

// ---------------------------------------------------------------------------------------------
// WeChat apps

export const weChatAppSchema = z
  .strictObject({
    kind: z
      .enum(['website', 'official_account', 'mini_program'])
      .describe(
        'website: QR-code login on open.weixin.qq.com (Open Platform website app); ' +
          'official_account: OAuth inside the WeChat browser; mini_program: wx.login() code exchange.',
      ),
    appid: z
      .string()
      .regex(APPID_PATTERN, 'must be "wx" followed by 16 lowercase hex digits')
      .describe('The AppID WeChat issued for this app.'),
    name: z
      .string()
      .min(1)
      .optional()
      .describe('Name shown on pages (account page, errors); default: the appid.'),
    secret: secretRefSchema.describe('The AppSecret, by reference.'),
    scopePolicy: z
      .enum(['base_then_userinfo', 'userinfo'])
      .optional()
      .describe(
        'official_account only. base_then_userinfo (default): a silent snsapi_base trip first, and ' +
          'snsapi_userinfo (a consent screen) only for people not known yet or whose account lacks a ' +
          'unionid or a profile; userinfo: always snsapi_userinfo.',
      ),
  })
  .refine((app) => app.scopePolicy === undefined || app.kind === 'official_account', {
    path: ['scopePolicy'],
    message: 'applies to official_account apps only',
  });

/**
 * The token of an Official Account domain verification file: the console asks for
 * MP_verify_<token>.txt holding exactly <token> (letters and digits).
 */
export const MP_VERIFY_TOKEN_PATTERN = /^[A-Za-z0-9]{1,64}$/;

// ---------------------------------------------------------------------------------------------
// OIDC clients

/**
 * Standard registration metadata (RFC 7591, OpenID Connect Registration and the extensions
 * oidc-provider implements) that we do not check ourselves: passed through to oidc-provider, which
 * checks a client against its enabled features, algorithms and keys only when the client is first
 * used; loadConfig and the server's start ask it for every client beforehand (client-metadata.ts).
 * Anything else in a client is refused, so a typo ("redirect_uri") is an error instead of a
 * silently ignored key.
 */
export const PASSTHROUGH_CLIENT_METADATA = [
  'application_type',
  'authorization_details_types',
  'authorization_encrypted_response_alg',
  'authorization_encrypted_response_enc',
  'authorization_signed_response_alg',
  'backchannel_authentication_request_signing_alg',
  'backchannel_token_delivery_mode',
  'backchannel_user_code_parameter',
  'client_id_issued_at',
  'client_secret_expires_at',
  'contacts',
  'default_acr_values',
  'default_max_age',
  'dpop_bound_access_tokens',
  'id_token_encrypted_response_alg',
  'id_token_encrypted_response_enc',
  'introspection_encrypted_response_alg',
  'introspection_encrypted_response_enc',
  'introspection_signed_response_alg',
  'jwks',
  'request_object_encryption_alg',
  'request_object_encryption_enc',
  'request_object_signing_alg',
  'require_auth_time',
  'require_pushed_authorization_requests',
  'require_signed_request_object',
  'response_modes',
  'subject_type',
  'tls_client_auth_san_dns',
  'tls_client_auth_san_email',
  'tls_client_auth_san_ip',
  'tls_client_auth_san_uri',
  'tls_client_auth_subject_dn',
  'tls_client_certificate_bound_access_tokens',
  'token_endpoint_auth_signing_alg',
  'use_mtls_endpoint_aliases',
  'userinfo_encrypted_response_alg',
  'userinfo_encrypted_response_enc',
  'userinfo_signed_response_alg',
] as const;

/** RFC 8693 token exchange: how a mini program trades its wx.login code for tokens. */
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** The methods the provider enables (CLIENT_AUTH_METHODS, oidc/provider.ts); mutual TLS is not among them. */
const TOKEN_ENDPOINT_AUTH_METHODS = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
  'private_key_jwt',
  'none',
] as const;

/** Methods that authenticate the client with its client_secret. */
const SECRET_AUTH_METHODS: readonly string[] = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
];

const passthroughShape = Object.fromEntries(
  PASSTHROUGH_CLIENT_METADATA.map((name) => [name, z.json().optional()]),
) as Record<(typeof PASSTHROUGH_CLIENT_METADATA)[number], z.ZodOptional<z.ZodJSONSchema>>;

/** wechat.timeoutMs when the configuration does not say (also what code without a config assumes). */
export const DEFAULT_WECHAT_TIMEOUT_MS = 5000;

export const clientSchema = z
  .strictObject({
    ...passthroughShape,
    client_id: z.string().min(1).describe('The client identifier relying parties send; unique.'),
    client_secret: clientSecretRefSchema
      .optional()
      .describe('Needed by confidential clients (client_secret_basic, _post, _jwt); by reference.'),
    client_name: z.string().min(1).optional().describe('Name shown on the consent page.'),
    redirect_uris: z
      .array(httpUrlSchema)
      .optional()
      .describe('Where authorization responses may be sent; exact match. Required for the code flow.'),
    post_logout_redirect_uris: z
      .array(httpUrlSchema)
      .optional()
      .describe('Where RP-initiated logout may return to.'),
    grant_types: z
      .array(z.string().min(1))
      .optional()
      .describe('Default ["authorization_code"]; add "refresh_token" for refresh tokens.'),
    response_types: z.array(z.string().min(1)).optional().describe('Default ["code"].'),
    token_endpoint_auth_method: z
      .enum(TOKEN_ENDPOINT_AUTH_METHODS)
      .optional()
      .describe('Default client_secret_basic; "none" for public clients (which must use PKCE).'),
    id_token_signed_response_alg: z.string().min(1).optional().describe('Default RS256.'),
    scope: z.string().min(1).optional().describe('Space-separated scopes this client may request.'),
    logo_uri: httpUrlSchema.optional().describe('Logo shown on the consent page.'),
    client_uri: httpUrlSchema.optional().describe("The client's home page."),
    policy_uri: httpUrlSchema.optional().describe("The client's privacy policy."),
    tos_uri: httpUrlSchema.optional().describe("The client's terms of service."),
    jwks_uri: httpUrlSchema.optional().describe("URL of the client's public keys (private_key_jwt)."),
    sector_identifier_uri: httpUrlSchema.optional().describe('Pairwise subject sector identifier.'),
    initiate_login_uri: httpUrlSchema.optional().describe('Third-party-initiated login URI.'),
    backchannel_logout_uri: httpUrlSchema.optional().describe('Receives back-channel logout tokens.'),
    backchannel_logout_session_required: z
      .boolean()
      .optional()
      .describe('Include sid in back-channel logout tokens.'),
    backchannel_client_notification_endpoint: httpUrlSchema.optional().describe('CIBA notifications.'),
    account_events_uri: httpUrlSchema
      .optional()
      .describe(
        'Ours, not standard: receives signed Security Event Tokens (RFC 8417, pushed as RFC 8935) when an ' +
          'account this client knows is deleted or its WeChat identities change.',
      ),
    first_party: z
      .boolean()
      .default(false)
      .describe('Ours, not standard: a first-party application skips the consent page.'),
    require_pkce: z
      .boolean()
      .optional()
      .describe(
        'Ours, not standard: PKCE on every authorization request. Public clients always need it; a ' +
          'confidential client may otherwise bind its code with an OpenID Connect nonce instead (RFC 9700 2.1.1).',
      ),
    resource_server: z
      .boolean()
      .optional()
      .describe(
        'Ours, not standard: an API that introspects the access tokens other clients present to it. ' +
          'Without it a client may introspect only its own tokens.',
      ),
    wechat_mini_program_appid: z
      .string()
      .regex(APPID_PATTERN, 'must be "wx" followed by 16 lowercase hex digits')
      .optional()
      .describe(
        'Ours, not standard: the mini_program app (in wechat.apps) whose wx.login codes this client ' +
          `exchanges at the token endpoint; requires the grant type ${TOKEN_EXCHANGE_GRANT} in grant_types. ` +
          'A mini program is a public client: token_endpoint_auth_method "none".',
      ),
  })
  .superRefine((client, ctx) => {
    const method = client.token_endpoint_auth_method ?? 'client_secret_basic';
    if (SECRET_AUTH_METHODS.includes(method) && client.client_secret === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['client_secret'],
        message: `is required for token_endpoint_auth_method ${method}`,
      });
    }
    const grants = client.grant_types ?? ['authorization_code'];
    const redirects = grants.includes('authorization_code') || grants.includes('implicit');
    if (redirects && (client.redirect_uris ?? []).length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['redirect_uris'],
        message: 'must list at least one URI for the authorization_code grant',
      });
    }
  });

// ---------------------------------------------------------------------------------------------
// The file

/** A lifetime in seconds. */
function seconds(fallback: number, description: string) {
  return z.int().min(1).default(fallback).describe(`${description} Seconds; default ${fallback}.`);
}

function rateLimitRule(points: number, description: string) {
  return z
    .strictObject({
      points: z.int().min(1).default(points).describe(`Requests allowed per window. Default ${points}.`),
      durationSeconds: seconds(60, 'The window.'),
    })
    .prefault({})
    .describe(description);
}

export const ttlSchema = z.strictObject({
  interaction: seconds(600, 'A login in progress: long enough to find the phone and scan the QR code.'),
  session: seconds(1_209_600, 'The login session at this provider (14 days).'),
  grant: seconds(1_209_600, "A person's consent to a client (14 days)."),
  accessToken: seconds(3600, 'Access tokens.'),
  idToken: seconds(3600, 'ID tokens.'),
  refreshToken: seconds(1_209_600, 'Refresh tokens (14 days).'),
  authorizationCode: seconds(60, 'Authorization codes: exchanged at once by the relying party.'),
});

export const dataDirSchema = z
  .string()
  .min(1)
  .default('./data')
  .describe(
    'Folder for the embedded stores and generated keys, kept mode 0700; relative to the working directory.',
  );

export const limitsSchema = z
  .strictObject({
    maxBodyBytes: z
      .int()
      .min(1024)
      .max(ENGINE_MAX_BODY_BYTES, {
        error: `must be at most ${ENGINE_MAX_BODY_BYTES} (56 KiB): oidc-provider reads no larger body on its endpoints`,
      })
      .default(ENGINE_MAX_BODY_BYTES)
      .describe(
        'Largest request body accepted, bytes; a larger declared one (Content-Length) is answered 413 ' +
          "unread. Default and maximum 57344 (56 KiB), oidc-provider's own limit on its endpoints.",
      ),
    headersTimeout: z
      .int()
      .min(1)
      .max(60)
      .default(HEADERS_TIMEOUT_DEFAULT_SECONDS)
      .describe(
        "Seconds a client has to send a request's headers; a slower one is answered 408 and its " +
          `connection closed (idle keep-alive connections are not). At most 60; default ${HEADERS_TIMEOUT_DEFAULT_SECONDS}.`,
      ),
    // The defaults: generous enough for many people behind one NAT (a login is one or two counted
    // requests, and a callback), tight enough to stop scripted floods.
    rateLimits: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Answer 429 with Retry-After past these limits.'),
        interaction: rateLimitRule(
          300,
          "Authorization requests (/auth), the consent and abort posts and the account page's posts, " +
            'per client IP.',
        ),
        callback: rateLimitRule(
          120,
          "WeChat's redirects to /interaction/:uid/wechat-callback, per client IP.",
        ),
        token: rateLimitRule(
          300,
          'Failed POST /token and POST /request (pushed authorization) requests (400 or 401), per client ' +
            'IP, and per client_id when the client authenticates with HTTP Basic: successful ones are not counted.',
        ),
        miniProgram: rateLimitRule(
          60,
          'Calls to the mini-program endpoints (/mini-program/decrypt, /phone-number, /check-session), ' +
            'per person and mini program: the access token says who, whatever the address.',
        ),
      })
      .prefault({})
      .describe('Counted in Redis (shared by every instance) when configured, else in memory.'),
  })
  .prefault({})
  .describe('Abuse limits.');

export const avatarsSchema = z
  .strictObject({
    allowedHosts: z
      .array(z.string().regex(/^[a-z0-9.-]+(:\d{1,5})?$/i, 'must be a host or host:port'))
      .default(['thirdwx.qlogo.cn', 'wx.qlogo.cn'])
      .describe(
        "Hosts WeChat avatars are downloaded from (WeChat's own by default); redirects may lead " +
          "only to these. The in-process sandbox's host is added when it runs, and an external emulator's " +
          '(wechat.openBaseUrl, apiBaseUrl) outside production.',
      ),
    maxBytes: z.int().min(1024).default(1_048_576).describe('Largest avatar accepted, bytes.'),
    timeoutMs: z.int().min(1).default(3000).describe('Budget of one avatar download, milliseconds.'),
    cacheMaxAge: seconds(86_400, 'Cache-Control max-age of /avatars/<id>.'),
    retryAfter: seconds(600, 'How long an avatar URL that failed to download is left alone.'),
  })
  .prefault({})
  .describe(
    'Self-hosted avatars: downloaded at login when they change, served at /avatars/<account id> ' +
      'as the picture claim.',
  );

export const accountPageSchema = z
  .strictObject({
    recentLogin: seconds(
      RECENT_LOGIN_DEFAULT_SECONDS,
      'How recent the login must be to unbind a WeChat or delete the account on the account page; ' +
        'an older one (a browser left logged in: the session lasts ttl.session) is asked to log in ' +
        'with WeChat again first (prompt=login, max_age=0). Signing out everywhere and revoking an ' +
        'application need no recent login.',
    ),
  })
  .prefault({})
  .describe('The account page (/account).');

export const shutdownSchema = z
  .strictObject({
    delay: z
      .int()
      .min(0)
      .default(0)
      .describe(
        'After SIGTERM, how long the instance goes on serving while /readyz answers 503 and every ' +
          'answer closes its connection, so that the load balancer stops sending here before the ' +
          'instance stops accepting (a Kubernetes endpoint removal, a target group). Seconds; ' +
          'default 0: stop accepting at once.',
      ),
    timeout: seconds(
      DRAIN_TIMEOUT_DEFAULT_SECONDS,
      'Then, how long requests in flight may take to finish before their connections are cut.',
    ),
  })
  .prefault({})
  .describe("Stopping (as Keycloak's shutdown-delay and shutdown-timeout).");

export const configFileSchema = z
  .strictObject({
    port: portSchema.default(3000).describe('Port the HTTP server listens on; env PORT overrides.'),
    host: z
      .string()
      .min(1)
      .optional()
      .describe('Interface to bind; default 0.0.0.0 in production (NODE_ENV=production), else 127.0.0.1.'),
    management: z
      .strictObject({
        port: portSchema
          .optional()
          .describe(
            'Port of the management listener; env MANAGEMENT_PORT overrides; must differ from port. ' +
              'Set: it serves /metrics, /healthz and /readyz and nothing else, and the main port no ' +
              'longer serves /metrics. Unset: no management listener, /metrics on the main port.',
          ),
        host: z
          .string()
          .min(1)
          .optional()
          .describe('Interface the management listener binds; default: host. Needs a management port.'),
      })
      .optional()
      .describe(
        "A second HTTP listener for Prometheus and probes (as Keycloak's management port), so that " +
          '/metrics never faces the internet: publish the main port only.',
      ),
    issuer: issuerSchema
      .optional()
      .describe(
        'The public OIDC issuer URL, no trailing slash; env ISSUER overrides; default http://localhost:<port>.',
      ),
    trustProxy: z
      .boolean()
      .default(false)
      .describe('Trust X-Forwarded-Proto/-Host/-For: only behind a reverse proxy that sets them.'),
    behindTlsProxy: z
      .boolean()
      .default(false)
      .describe(
        'A reverse proxy in front terminates TLS (this server itself speaks plain HTTP). Required in ' +
          'production, where the issuer must be https; needs trustProxy so requests are seen as https.',
      ),
    dataDir: dataDirSchema,
    log: z
      .strictObject({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .describe('Least severe level written.'),
        requests: z
          .enum(['all', 'failures'])
          .default('failures')
          .describe(
            'Which requests get an access line at info: "failures" (4xx at info, 503 at warn, other 5xx at ' +
              'error, the others at debug) or "all" (every 2xx and 3xx at info too).',
          ),
      })
      .prefault({}),
    storage: z
      .strictObject({
        databaseUrl: databaseUrlSchema
          .optional()
          .describe(
            'PostgreSQL URL; env DATABASE_URL overrides; unset: embedded SQLite (accounts.sqlite) under dataDir.',
          ),
        redisUrl: redisUrlSchema
          .optional()
          .describe('Redis URL for short-lived OIDC artifacts; env REDIS_URL overrides; unset: kept in SQL.'),
        redisKeyPrefix: z
          .string()
          .refine(
            (prefix) => !/[{}]/.test(prefix),
            'must not contain { or } (a hash tag would put every key in one cluster slot)',
          )
          .default('wob:')
          .describe(
            'Prefix of every Redis key this server writes; must not contain { or } (no hash tags: every ' +
              'Lua script touches one key, see src/storage/redis/oidc-adapter.ts).',
          ),
      })
      .prefault({}),
    wechat: z
      .strictObject({
        openBaseUrl: openBaseUrlSchema
          .default('https://open.weixin.qq.com')
          .describe(
            'Where browsers are sent to authorize; env WECHAT_OPEN_BASE_URL overrides. No credentials.',
          ),
        apiBaseUrl: apiBaseUrlSchema
          .default('https://api.weixin.qq.com')
          .describe('Where code exchanges go; env WECHAT_API_BASE_URL overrides. No credentials.'),
        timeoutMs: z
          .int()
          .min(1)
          .default(DEFAULT_WECHAT_TIMEOUT_MS)
          .describe('Timeout of one WeChat API call, milliseconds.'),
        apps: z.array(weChatAppSchema).default([]).describe('The WeChat apps people can log in with.'),
        mpVerifyTokens: z
          .array(
            z
              .string()
              .regex(MP_VERIFY_TOKEN_PATTERN, 'must be the letters and digits of MP_verify_<token>.txt'),
          )
          .default([])
          .describe(
            'Official Account domain verification: for each token the console gives, ' +
              '/MP_verify_<token>.txt is served at the site root with exactly the token as its content.',
          ),
        miniProgram: z
          .strictObject({
            sessionKeyTtl: seconds(
              1_209_600,
              "How long the session key of a mini program's wx.login is kept on the server (never sent " +
                'to the client), for decrypting its data and checking its session. WeChat does not say how ' +
                'long its keys live; a stale one is detected and the mini program told to call wx.login ' +
                'again. Default: as long as a refresh token (14 days).',
            ),
            encryptedDataMaxAge: seconds(
              600,
              'Encrypted user data is refused when its watermark.timestamp is older than this (it is ' +
                'stamped when WeChat hands it to the mini program).',
            ),
          })
          .prefault({})
          .describe('The server side of mini_program apps.'),
      })
      .prefault({}),
    oidc: z
      .strictObject({
        jwks: jwksRefSchema
          .optional()
          .describe('Private signing keys (JWKS); unset: generated into dataDir (development only).'),
        cookieKeys: z
          .array(secretRefSchema)
          .min(1)
          .optional()
          .describe('Cookie signing keys, newest first; unset: generated into dataDir (development only).'),
        ttl: ttlSchema.prefault({}),
      })
      .prefault({}),
    clients: z.array(clientSchema).default([]).describe('The relying parties.'),
    sandbox: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Run the built-in WeChat emulator in-process and send WeChat logins to it.'),
        port: z.int().min(0).max(65535).default(0).describe('Port of the emulator (its own origin); 0: any.'),
        allowInProduction: z
          .boolean()
          .default(false)
          .describe('Needed to run the emulator with NODE_ENV=production (staging, demos).'),
      })
      .prefault({}),
    demo: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Register a demo relying party at /demo; refused in production.'),
      })
      .prefault({}),
    limits: limitsSchema,
    avatars: avatarsSchema,
    account: accountPageSchema,
    shutdown: shutdownSchema,
  })
  // Runs even when other fields are invalid (`when`), so duplicates are reported with everything else.
  .superRefine(
    (file, ctx) => {
      for (const [path, message] of duplicateIds(file)) ctx.addIssue({ code: 'custom', path, message });
      for (const [path, message] of reservedClientIds(file)) ctx.addIssue({ code: 'custom', path, message });
      for (const [path, message] of miniProgramBindings(file))
        ctx.addIssue({ code: 'custom', path, message });
    },
    { when: () => true },
  );

export type ConfigFile = z.output<typeof configFileSchema>;
export type ClientEntry = z.output<typeof clientSchema>;

/**
 * Duplicate appids and client_ids. The value may be only partly valid here, so it is read
 * defensively, as unknown.
 */
function duplicateIds(file: unknown): Array<[PropertyKey[], string]> {
  const found: Array<[PropertyKey[], string]> = [];
  const lists = [
    { path: ['wechat', 'apps'], key: 'appid' },
    { path: ['clients'], key: 'client_id' },
  ];
  for (const { path, key } of lists) {
    const seen = new Map<string, number>();
    for (const [index, item] of entries(path.reduce<unknown>(field, file))) {
      const id = field(item, key);
      if (typeof id !== 'string') continue;
      const first = seen.get(id);
      if (first === undefined) seen.set(id, index);
      else found.push([[...path, index, key], `duplicate ${key} "${id}" (also at index ${first})`]);
    }
  }
  return found;
}

/** The client_id of the built-in demo relying party (src/demo/demo-client.ts), registered with demo.enabled. */
export const DEMO_CLIENT_ID = 'demo';

/**
 * The client_ids the server registers itself: a configured client with one of them would make
 * oidc-provider refuse to start ("client_id must be unique"), without naming it. Read defensively,
 * as duplicateIds does.
 */
function reservedClientIds(file: unknown): Array<[PropertyKey[], string]> {
  const found: Array<[PropertyKey[], string]> = [];
  const demo = field(field(file, 'demo'), 'enabled') === true;
  for (const [index, client] of entries(field(file, 'clients'))) {
    const id = field(client, 'client_id');
    const path = ['clients', index, 'client_id'];
    if (id === ACCOUNT_PAGE_CLIENT_ID) {
      found.push([path, `"${id}" is reserved: the account page (/account) registers a client with this id`]);
    } else if (id === DEMO_CLIENT_ID && demo) {
      found.push([
        path,
        `"${id}" is reserved while demo.enabled is true: the demo relying party (/demo) registers a client with this id`,
      ]);
    }
  }
  return found;
}

/**
 * A client that exchanges wx.login codes names its mini_program app, and the other way round.
 * Read defensively, as duplicateIds does.
 */
function miniProgramBindings(file: unknown): Array<[PropertyKey[], string]> {
  const found: Array<[PropertyKey[], string]> = [];
  const miniPrograms = new Set(
    entries(field(field(file, 'wechat'), 'apps'))
      .filter(([, app]) => field(app, 'kind') === 'mini_program')
      .map(([, app]) => field(app, 'appid')),
  );
  for (const [index, client] of entries(field(file, 'clients'))) {
    const appid = field(client, 'wechat_mini_program_appid');
    const grants = field(client, 'grant_types');
    const exchanges = Array.isArray(grants) && grants.includes(TOKEN_EXCHANGE_GRANT);
    const path = ['clients', index, 'wechat_mini_program_appid'];
    if (typeof appid === 'string' && !miniPrograms.has(appid)) {
      found.push([path, `no mini_program app with appid "${appid}" in wechat.apps`]);
    }
    if (typeof appid === 'string' && !exchanges) {
      found.push([
        ['clients', index, 'grant_types'],
        `must include ${TOKEN_EXCHANGE_GRANT} for a mini program client`,
      ]);
    }
    if (appid === undefined && exchanges) {
      found.push([
        path,
        `is required with the ${TOKEN_EXCHANGE_GRANT} grant: the mini_program app it exchanges codes for`,
      ]);
    }
  }
  return found;
}
