import type { ClientMetadata } from 'oidc-provider';
import type { WeChatApp } from '../upstream/wechat/types.ts';
import type { Secret } from './secret.ts';

/**
 * The effective configuration after the file is validated, environment overrides
 * are applied and every secret reference is resolved. Produced by `loadConfig()`;
 * everything else in the server reads only this.
 */
export interface Config {
  /** NODE_ENV === 'production'. Production refuses development-only settings. */
  production: boolean;
  /** Port the HTTP server listens on (env PORT). */
  port: number;
  /** Host/interface to bind; default 0.0.0.0 in production, 127.0.0.1 otherwise. */
  host: string;
  /**
   * The management listener (env MANAGEMENT_PORT): /metrics, /healthz and /readyz on a port of
   * their own, and /metrics no longer on the main port. Absent: no such listener, /metrics on the
   * main port. Port 0 (code only, tests) picks a free port.
   */
  management?: ManagementListener;
  /** The OIDC issuer URL, no trailing slash (env ISSUER). Default http://localhost:<port>. */
  issuer: string;
  /** Trust X-Forwarded-* from a proxy in front (koa's app.proxy). */
  trustProxy: boolean;
  /**
   * A reverse proxy in front terminates TLS; this server speaks plain HTTP. Production requires an
   * https issuer, hence this (and trustProxy, so oidc-provider sees the requests as https).
   */
  behindTlsProxy: boolean;
  /** Directory for the embedded store and generated keys. */
  dataDir: string;
  log: {
    level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
    /** Which successful requests get an access line at info; 4xx always do, 5xx at error (http/request-log.ts). */
    requests: 'all' | 'failures';
  };
  storage: {
    /** env DATABASE_URL; undefined = embedded SQLite (accounts.sqlite) under dataDir. */
    databaseUrl: string | undefined;
    /** env REDIS_URL; undefined = artifacts kept in the SQL database. */
    redisUrl: string | undefined;
    /** Prefix of every Redis key this server writes, e.g. "wob:". */
    redisKeyPrefix: string;
  };
  wechat: {
    /** env WECHAT_OPEN_BASE_URL, default https://open.weixin.qq.com (no trailing slash). */
    openBaseUrl: string;
    /** env WECHAT_API_BASE_URL, default https://api.weixin.qq.com (no trailing slash). */
    apiBaseUrl: string;
    /** Timeout of one WeChat API call, milliseconds. */
    timeoutMs: number;
    apps: WeChatApp[];
    /** Official Account domain verification: /MP_verify_<token>.txt answers <token> for each of these. */
    mpVerifyTokens: string[];
    /** The mini_program apps' server side. */
    miniProgram: {
      /** How long the session key of a wx.login is kept on the server, seconds. */
      sessionKeyTtl: number;
      /** Encrypted user data whose watermark is older than this is refused, seconds. */
      encryptedDataMaxAge: number;
    };
  };
  oidc: {
    /** Private JWKS used to sign (first key of each alg signs); undefined = generate into dataDir. */
    jwks: { keys: Record<string, unknown>[] } | undefined;
    /** Cookie signing keys, newest first; undefined = generate into dataDir. */
    cookieKeys: Secret[] | undefined;
    /** Lifetimes in seconds. */
    ttl: {
      interaction: number;
      session: number;
      grant: number;
      accessToken: number;
      idToken: number;
      refreshToken: number;
      authorizationCode: number;
    };
  };
  /** OIDC clients, as oidc-provider takes them (client_secret already resolved to a string). */
  clients: ClientConfig[];
  sandbox: {
    /** Start the built-in WeChat emulator in-process and point the WeChat base URLs at it. */
    enabled: boolean;
    /** Port of the in-process sandbox (it is a separate origin, as WeChat is). 0 = any free port. */
    port: number;
    /** Needed to run the sandbox when production is true. */
    allowInProduction: boolean;
  };
  /** Register a built-in demo relying party at /demo (never in production). */
  demo: { enabled: boolean };
  /** Self-hosted avatars (config file `avatars`; its defaults: ./defaults.ts, from the schema). */
  avatars: AvatarsConfig;
  /** Abuse limits (config file `limits`). */
  limits: LimitsConfig;
  /** The account page (config file `account`). */
  account: AccountPageConfig;
  /** How the instance stops (config file `shutdown`). */
  shutdown: ShutdownConfig;
}

/** What SIGTERM does before the process exits. */
export interface ShutdownConfig {
  /** Seconds of serving with /readyz at 503 and every connection closed after its answer; 0: none. */
  delay: number;
  /** Seconds requests in flight get to finish once the server stops accepting. */
  timeout: number;
}

/** Where the management listener binds. */
export interface ManagementListener {
  port: number;
  /** Default: the main server's host. */
  host: string;
}

/** How WeChat avatars are downloaded and served from /avatars/<account id>. */
export interface AvatarsConfig {
  /** Hosts (host or host:port) avatars are downloaded from; redirects may lead only to these. */
  allowedHosts: string[];
  /** Largest image accepted, bytes. */
  maxBytes: number;
  /** Budget of one download, milliseconds. */
  timeoutMs: number;
  /** Cache-Control max-age of /avatars/<id>, seconds. */
  cacheMaxAge: number;
  /** How long a URL that failed to download is left alone, seconds. */
  retryAfter: number;
}

/** The account page's rules. */
export interface AccountPageConfig {
  /** Unbinding and deletion need a login at most this old, seconds; older, the person logs in again. */
  recentLogin: number;
}

/** Request size and rate limits. */
export interface LimitsConfig {
  /** Largest request body accepted, bytes: a larger Content-Length is answered 413 unread. */
  maxBodyBytes: number;
  /** Seconds a client has to send a request's headers: 408 and the connection closed past it. */
  headersTimeout: number;
  rateLimits: {
    enabled: boolean;
    /** Per client IP: /auth and the consent and abort posts (not the login and consent pages). */
    interaction: RateLimitRule;
    /** Per client IP: WeChat's redirects back to /interaction/:uid/wechat-callback. */
    callback: RateLimitRule;
    /** Failed POST /token requests (400, 401), per client IP, and per client_id when sent with HTTP Basic. */
    token: RateLimitRule;
    /** Calls to the mini-program endpoints, per person and mini program (the access token's). */
    miniProgram: RateLimitRule;
  };
}

export interface RateLimitRule {
  /** Requests allowed per window from one client (or person). */
  points: number;
  /** The window, seconds. */
  durationSeconds: number;
}

/** Standard client registration metadata plus our own extras. */
export type ClientConfig = ClientMetadata & {
  client_id: string;
  /** Our extra: skip the consent page (first-party applications). Default false. */
  first_party?: boolean;
  /** Our extra: PKCE even when a confidential client sends a nonce (pkce-policy.ts). Default false. */
  require_pkce?: boolean;
  /** Our extra: may introspect tokens issued to other clients (an API). Default false. */
  resource_server?: boolean;
  /** Our extra: the mini_program app (AppID) whose wx.login codes this client exchanges for tokens. */
  wechat_mini_program_appid?: string;
  /** Our extra: where signed account events (deletion, identity changes) are pushed. */
  account_events_uri?: string;
};
