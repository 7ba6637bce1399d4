import Provider, {
  type Client,
  type ClientAuthMethod,
  type Configuration,
  errors,
  type KoaContextWithOIDC,
  type SigningAlgorithm,
} from 'oidc-provider';
import type { ClientConfig, Config } from '../config/types.ts';
import { recordRefusals } from '../http/request-log.ts';
import type { Views } from '../http/views.ts';
import { LANGS } from '../i18n/messages.ts';
import type { Logger } from '../observability/logger.ts';
import type { AdapterFactory } from '../storage/ports.ts';
import { createCookieSigner } from './cookie-signer.ts';
import { SCOPE_CLAIMS, SUPPORTED_SCOPES } from './find-account.ts';
import { createLoadExistingGrant, isFirstParty, type RememberedScopes } from './grants.ts';
import type { ProviderKeys } from './keys.ts';
import { wasLogged } from './logged-errors.ts';
import { createPages } from './pages.ts';
import { pkceRequired, REQUIRE_PKCE_METADATA } from './pkce-policy.ts';
import { promptPolicy } from './prompt-policy.ts';
import { revokingOnConcurrentReuse } from './single-use.ts';
import { MINI_PROGRAM_APPID_METADATA } from './token-exchange/constants.ts';

/**
 * Where oidc-provider sends a browser for an interaction it starts: our page for it. The login page
 * answered at the authorization request (interaction/login-at-authorization.ts) recognises that
 * redirect by this same path.
 */
export function interactionPath(uid: string): string {
  return `/interaction/${uid}`;
}

/** What the provider reads of the configuration. */
export type ProviderSettings = Pick<Config, 'issuer' | 'trustProxy'> & { oidc: Pick<Config['oidc'], 'ttl'> };

export interface ProviderDeps {
  config: ProviderSettings;
  clients: ClientConfig[];
  keys: ProviderKeys;
  adapter: AdapterFactory;
  findAccount: Configuration['findAccount'];
  views: Views;
  logger: Logger;
  /** Remembered consent (accounts/consents.ts): a third-party client allowed before is not asked again. */
  rememberedScopes: RememberedScopes;
}

/**
 * Who may introspect a token: the client it was issued to, or a client registered as a resource
 * server, and never a public client (RFC 7662 section 2.1 asks for authorization, and a public
 * client's client_id alone is none: whoever holds one of its tokens could read whose it is). And
 * whether it is still active as far as its account goes: oidc-provider's introspection
 * does not ask for the account, so a token that findAccount refuses (its account deleted, or newer
 * than the token: see find-account.ts) would otherwise be reported active until it expires.
 */
function introspectionPolicy(findAccount: Configuration['findAccount']) {
  return async (ctx: KoaContextWithOIDC, client: Client, token: IntrospectedToken): Promise<boolean> => {
    if (client.clientAuthMethod === 'none') return false;
    if (token.clientId !== client.clientId && client.metadata().resource_server !== true) return false;
    if (token.accountId === undefined || !findAccount) return true;
    return (
      (await findAccount(ctx, token.accountId, token as Parameters<typeof findAccount>[2])) !== undefined
    );
  };
}

type IntrospectedToken = { clientId?: string; accountId?: string };

/**
 * Who may revoke a token: the client it was issued to (RFC 7009 section 2.1). This is oidc-provider's
 * default rule, stated here so that its "you SHOULD change it" notice does not greet every operator:
 * a confidential client presenting another client's token is refused with an error, a public one
 * gets the usual empty 200 and the token stays valid.
 */
function revocationAllowed(_ctx: unknown, client: Client, token: { clientId?: string }): boolean {
  if (token.clientId === client.clientId) return true;
  if (client.clientAuthMethod === 'none') return false;
  throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
}

/**
 * How clients authenticate. oidc-provider authenticates a client the same way at the token,
 * introspection and revocation endpoints (by its registered token_endpoint_auth_method), so these
 * are the methods of all three, and discovery says so for each: RFC 8414 section 2 reads an
 * omitted introspection_ or revocation_endpoint_auth_methods_supported as client_secret_basic
 * only. A public client ("none") is accepted at both; it may revoke its own tokens, and its
 * introspection always answers inactive (introspectionPolicy).
 */
export const CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'client_secret_jwt',
  'private_key_jwt',
  'none',
];

/** The algorithms of client_secret_jwt (HMAC) and private_key_jwt assertions (oidc-provider's default). */
export const CLIENT_AUTH_SIGNING_ALGS: readonly SigningAlgorithm[] = [
  'HS256',
  'RS256',
  'PS256',
  'ES256',
  'Ed25519',
  'EdDSA',
];

/**
 * oidc-provider, configured (never forked): everything OIDC (discovery, JWKS, authorization code +
 * PKCE, refresh, userinfo, introspection, revocation, RP-initiated logout) is the library's; we give
 * it storage, accounts, keys, clients, lifetimes and our pages.
 */
export function createProvider(deps: ProviderDeps): Provider {
  const { config, keys } = deps;
  const ttl = config.oidc.ttl;
  const pages = createPages(deps.views);

  const configuration: Configuration = {
    // redirect_uri is REQUIRED in an authentication request (OIDC Core 3.1.2.1), even for a client
    // that registered one: oidc-provider would otherwise take the registered one.
    allowOmittingSingleRegisteredRedirectUri: false,
    discovery: {
      // Our pages' languages, which ui_locales chooses between (src/i18n/messages.ts).
      ui_locales_supported: [...LANGS],
      // oidc-provider names the token endpoint's methods only; those of these two are the same.
      introspection_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
      introspection_endpoint_auth_signing_alg_values_supported: [...CLIENT_AUTH_SIGNING_ALGS],
      revocation_endpoint_auth_methods_supported: [...CLIENT_AUTH_METHODS],
      revocation_endpoint_auth_signing_alg_values_supported: [...CLIENT_AUTH_SIGNING_ALGS],
    },
    clientAuthMethods: CLIENT_AUTH_METHODS,
    adapter: revokingOnConcurrentReuse(deps.adapter) as Configuration['adapter'],
    clients: deps.clients,
    extraClientMetadata: {
      properties: [
        'first_party',
        'resource_server',
        REQUIRE_PKCE_METADATA,
        MINI_PROGRAM_APPID_METADATA,
        'account_events_uri',
      ],
      validator(_ctx, key, value) {
        if (
          (key === 'first_party' || key === 'resource_server' || key === REQUIRE_PKCE_METADATA) &&
          value !== undefined &&
          typeof value !== 'boolean'
        ) {
          throw new Error(`${key} must be a boolean`);
        }
        if (key === 'account_events_uri' && value !== undefined && !/^https?:\/\//.test(String(value))) {
          throw new Error('account_events_uri must be an http(s) URL');
        }
        if (key === MINI_PROGRAM_APPID_METADATA && value !== undefined && typeof value !== 'string') {
          throw new Error(`${MINI_PROGRAM_APPID_METADATA} must be a string`);
        }
      },
    },
    findAccount: deps.findAccount,
    jwks: keys.jwks as Configuration['jwks'],
    cookies: {
      // koa's keygrip, made cheaper (see cookie-signer.ts): a login verifies about ten cookies.
      keys: createCookieSigner(keys.cookieKeys),
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
      names: cookieNames(config.issuer),
    },
    claims: {
      ...SCOPE_CLAIMS,
      openid: [...SCOPE_CLAIMS.openid],
      profile: [...SCOPE_CLAIMS.profile],
      wechat: [...SCOPE_CLAIMS.wechat],
      phone: [...SCOPE_CLAIMS.phone],
    },
    scopes: [...SUPPORTED_SCOPES],
    responseTypes: ['code'],
    pkce: { required: pkceRequired },
    features: {
      devInteractions: { enabled: false },
      // oidc-provider's default lets any confidential client introspect any client's token, which
      // would tell one relying party about another's users: a client introspects its own tokens, and
      // only the APIs registered as resource_server introspect those presented to them.
      introspection: { enabled: true, allowedPolicy: introspectionPolicy(deps.findAccount) },
      revocation: { enabled: true, allowedPolicy: revocationAllowed },
      // Relying parties that register backchannel_logout_uri hear of logouts and account deletions.
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: pages.logoutSource,
        postLogoutSuccessSource: pages.postLogoutSuccessSource,
      },
    },
    interactions: {
      policy: promptPolicy(),
      url: (_ctx, interaction) => interactionPath(interaction.uid),
    },
    loadExistingGrant: createLoadExistingGrant(deps.rememberedScopes),
    // A first-party client keeps offline_access without prompt=consent (a hook of our patch): the
    // operator consents for its own applications, as loadExistingGrant grants them everything asked.
    // The engine drops the scope from such a request before loadExistingGrant is asked (OIDC Core
    // 11 asks for prompt=consent "unless other conditions ... are in place"; this is one).
    offlineAccessWithoutConsentPrompt: (_ctx, client) => isFirstParty(client),
    // Rotate every refresh token on use: a stolen one is detected the moment both parties use it.
    rotateRefreshToken: true,
    renderError: pages.renderError,
    // Its self-submitting form's page (a hook of our patch to oidc-provider, patches/README.md).
    formPostSource: pages.formPostSource,
    ttl: {
      Interaction: ttl.interaction,
      Session: ttl.session,
      Grant: ttl.grant,
      AccessToken: ttl.accessToken,
      IdToken: ttl.idToken,
      AuthorizationCode: ttl.authorizationCode,
      RefreshToken: (ctx: KoaContextWithOIDC) => {
        // Never outlive the grant the token belongs to.
        const grantLeft = ctx.oidc.entities.Grant?.exp
          ? ctx.oidc.entities.Grant.exp - Math.floor(Date.now() / 1000)
          : undefined;
        return grantLeft ? Math.min(ttl.refreshToken, grantLeft) : ttl.refreshToken;
      },
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'],
      clientAuthSigningAlgValues: CLIENT_AUTH_SIGNING_ALGS,
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  // oidc-provider emits these for errors it has already answered; log them without secrets.
  provider.on('server_error', (ctx, error) => {
    if (wasLogged(error)) return;
    // The request id by name: userinfo and introspection run outside the logger's request context.
    const { requestId } = (ctx.state ?? {}) as { requestId?: string };
    deps.logger.error({ err: error, route: ctx.oidc?.route, requestId }, 'oidc server_error');
  });
  recordRefusals(provider);
  // A logout through /session/end notifies the session's clients itself and only emits their
  // failures (one attempt; an address its SSRF guard refuses fails the same way).
  provider.on('backchannel.error', (_ctx, error, client) => {
    deps.logger.warn(
      { clientId: client?.clientId, why: 'session ended', reason: errorReason(error) },
      'back-channel logout failed',
    );
  });
  return provider;
}

/** A client's registration that oidc-provider refuses, in its own words. */
export interface ClientRefusal {
  clientId: string;
  /** oidc-provider's description (e.g. "redirect_uris must not contain fragments"). */
  reason: string;
}

/**
 * The static clients whose metadata oidc-provider refuses. It checks a configured client only when
 * the client is first used (Client.find, at an authorization or token request), and then answers
 * that request with the refusal: the first person to log in read "redirect_uris must not contain
 * fragments", and the log named neither the client nor the reason. Asked here for every client
 * before the server answers anything, the same checks (metadata, grant and response types, scopes,
 * algorithms against the signing keys, client keys) name each refused client at once. A client
 * that passes is kept, checked, as its first use would have kept it.
 */
export async function clientRefusals(
  provider: Provider,
  clientIds: readonly string[],
): Promise<ClientRefusal[]> {
  const refusals: ClientRefusal[] = [];
  for (const clientId of clientIds) {
    try {
      if (!(await provider.Client.find(clientId))) refusals.push({ clientId, reason: 'is not registered' });
    } catch (error) {
      refusals.push({ clientId, reason: refusalReason(error) });
    }
  }
  return refusals;
}

/** An OAuth error's description (its message is the error code), else the error's message. */
function refusalReason(error: unknown): string {
  if (error instanceof errors.OIDCProviderError) return error.error_description ?? error.message;
  return error instanceof Error ? error.message : String(error);
}

/** The message and its cause's ("fetch failed" says little; the guard's refusal is the cause). */
function errorReason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}

/**
 * With an https issuer the session cookie is `__Host-session` (and its signature
 * `__Host-session.sig`): browsers accept a cookie so named only from this very host, over https, for
 * the whole path, so a site on a sibling subdomain cannot plant a session of its own (a valid one:
 * the attacker's own login) in a person's browser, who would then be logged in to every relying
 * party as someone else. oidc-provider sets it Secure, on `/` and without a domain, as the prefix
 * requires. The interaction cookies are scoped to their login's paths, which the prefix forbids, and
 * keep their names. Over http (development) browsers would refuse the prefixed cookie.
 */
function cookieNames(issuer: string): { session?: string } {
  return new URL(issuer).protocol === 'https:' ? { session: '__Host-session' } : {};
}
