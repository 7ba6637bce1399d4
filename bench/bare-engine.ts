import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Configuration } from 'oidc-provider';
import { type AnswerGate, gatedServerOptions } from '../src/http/committed-answers.ts';
import { keepConnectionsForProxies } from '../src/http/keep-alive.ts';
import { SCOPE_CLAIMS } from '../src/oidc/find-account.ts';
import { pkceRequired } from '../src/oidc/pkce-policy.ts';
import { openStores } from '../src/storage/open-stores.ts';
import { bridgeConfig } from './bridge-config.ts';
import type { ServerSpec } from './spec.ts';

/** The one person the bare engine logs in. */
export const BARE_ACCOUNT = 'bench-bare-account';

/**
 * The yardstick: oidc-provider alone (the same version), on the same storage adapters, with the same
 * clients, keys, algorithms, lifetimes and engine options as the bridge, and the cheapest login the
 * engine allows: the interaction route logs a fixed in-memory account in and grants what was asked,
 * in one step, without a page. Whatever the bridge costs beyond this is the bridge's own cost.
 */
export async function startBareEngine(spec: ServerSpec): Promise<{ url: string; close(): Promise<void> }> {
  const logger = {
    info() {},
    warn: (o: object, msg: string) => process.stderr.write(`${msg} ${JSON.stringify(o)}\n`),
  };
  // The bridge's answers wait for the embedded store's commit (src/http/committed-answers.ts): so do these.
  const gate: AnswerGate = {};
  const server = createServer(gatedServerOptions(gate));
  // The bridge's keep-alive too, as any engine behind a proxy needs it: it moves the figures. With
  // 65 s the untimed logins' idle connections were still open when a userinfo count began, and
  // Node's HTTP code ran there in a lower JIT tier (Maglev, not TurboFan): some 9,000 instructions a
  // call more, on the bare engine as on the bridge (bench/FINDINGS.md, "The keep-alive and the yardstick").
  keepConnectionsForProxies(server);
  const stores = await openStores({
    databaseUrl: spec.databaseUrl,
    redisUrl: spec.redisUrl,
    redisKeyPrefix: spec.redisKeyPrefix,
    dataDir: spec.dataDir,
    logger,
    onCommitFailure: () => server.closeAllConnections(),
  });
  gate.writes = stores.writes;
  try {
    const port = await listen(server);
    const url = `http://127.0.0.1:${port}`;
    const provider = new Provider(url, bareConfiguration(spec, stores.oidcAdapter));
    provider.use(async (ctx, next) => {
      if (ctx.method !== 'GET' || !ctx.path.startsWith('/interaction/')) return next();
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const grant = new provider.Grant({
        accountId: BARE_ACCOUNT,
        clientId: String(details.params.client_id),
      });
      grant.addOIDCScope(String(details.params.scope));
      const grantId = await grant.save();
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
        login: { accountId: BARE_ACCOUNT },
        consent: { grantId },
      });
      ctx.status = 303;
      ctx.redirect(returnTo);
    });
    server.on('request', provider.callback());
    return {
      url,
      async close() {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        });
        await stores.close();
      },
    };
  } catch (error) {
    server.close();
    await stores.close();
    throw error;
  }
}

function bareConfiguration(spec: ServerSpec, adapter: Configuration['adapter']): Configuration {
  // The bridge's own metadata extra (first_party) means nothing to the bare engine.
  const clients = spec.clients.map(({ first_party: _, ...client }) => client);
  const { ttl } = bridgeConfig(spec).oidc;
  return {
    adapter,
    clients,
    jwks: spec.jwks as Configuration['jwks'],
    cookies: {
      keys: spec.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, ...claimsLikeTheBridges() }),
    }),
    claims: { openid: [...SCOPE_CLAIMS.openid], profile: [...SCOPE_CLAIMS.profile] },
    scopes: ['openid', 'offline_access', 'profile'],
    responseTypes: ['code'],
    pkce: { required: pkceRequired },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    rotateRefreshToken: true,
    // The bridge's lifetimes, as plain numbers.
    ttl: {
      Interaction: ttl.interaction,
      Session: ttl.session,
      Grant: ttl.grant,
      AccessToken: ttl.accessToken,
      IdToken: ttl.idToken,
      RefreshToken: ttl.refreshToken,
      AuthorizationCode: ttl.authorizationCode,
    },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256', 'EdDSA'] },
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

let claimsServed = 0;

/**
 * Profile claims shaped as the bridge's for the benchmark's people (run.ts): half of them with a
 * Chinese nickname and an emoji, which makes every string holding it two-byte in V8 and costs a
 * UTF-8 encoding per response, and a picture URL of the bridge's form. With ASCII names here, the
 * bridge's userinfo paid for that encoding alone (about 2 % of its instructions, bench/README.md).
 */
function claimsLikeTheBridges() {
  // Its one account (BARE_ACCOUNT) stands for all of them: every other answer is the Chinese one.
  claimsServed += 1;
  const chinese = claimsServed % 2 === 1;
  const nickname = chinese ? '微信用户42 🐼' : 'Bench user 42';
  return {
    name: nickname,
    nickname,
    picture: 'https://127.0.0.1:3000/avatars/0b6c2a4e-8f0e-4c1d-9a55-3b2f1e7d6c90?v=AbCdEfGhIjKlMnOp',
    updated_at: 1_764_000_000,
  };
}
