import type Provider from 'oidc-provider';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Connectors, LoginConnector } from '../interaction/deps.ts';
import type { WeChatCallEvent } from '../upstream/wechat/client.ts';
import { UpstreamError, type WeChatIdentity } from '../upstream/wechat/types.ts';
import { HttpTally } from './http-tally.ts';
import { VERSION } from './version.ts';

/** The login kinds counted: the two browser connectors and the mini program's token exchange. */
export type LoginKind = 'website' | 'official_account' | 'mini_program';

/**
 * One instance's Prometheus metrics, in a registry of its own (not prom-client's global one), so
 * several instances in one process (tests) never share counters. Labels never carry ids, codes or
 * paths with ids: route templates only, to keep cardinality bounded and secrets out.
 */
export interface Metrics {
  registry: Registry;
  httpRequest(route: string, method: string, status: number, seconds: number): void;
  login(kind: LoginKind, outcome: string): void;
  /** The WeChat client's onCall hook. */
  wechatCall(event: WeChatCallEvent): void;
  rateLimited(endpoint: string): void;
  /** oidc-provider saved (opaque) or issued (structured) a token of this type. */
  tokenIssued(type: TokenType): void;
}

const TOKEN_TYPES = ['access_token', 'refresh_token', 'authorization_code', 'client_credentials'] as const;
type TokenType = (typeof TOKEN_TYPES)[number];

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const http = new HttpTally();
  http.register(registry);
  const logins = new Counter({
    name: 'wechat_logins_total',
    help: 'WeChat logins by kind and outcome (ok, or the failure code)',
    labelNames: ['kind', 'outcome'],
    registers: [registry],
  });
  const wechatDuration = new Histogram({
    name: 'wechat_api_duration_seconds',
    help: 'WeChat API call latency by api and outcome (ok, errcode, transport)',
    labelNames: ['api', 'outcome'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const wechatErrors = new Counter({
    name: 'wechat_api_errors_total',
    help: 'WeChat API calls without a usable answer, by api and errcode ("transport" or "shape" when none)',
    labelNames: ['api', 'errcode'],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'http_rate_limited_total',
    help: 'Requests refused with 429, by endpoint group',
    labelNames: ['endpoint'],
    registers: [registry],
  });
  // Prometheus's build_info idiom: a constant 1 whose label says which release this instance runs
  // (Node's own version is in the default metrics' nodejs_version_info).
  new Gauge({
    name: 'wechat_oidc_bridge_build_info',
    help: 'Always 1; the version label is the release this instance runs',
    labelNames: ['version'],
    registers: [registry],
  }).set({ version: VERSION }, 1);
  // Plain numbers per token, read at each scrape (as the HTTP series are: http-tally.ts).
  const issued = new Map<TokenType, number>(TOKEN_TYPES.map((type) => [type, 0]));
  new Counter({
    name: 'oidc_tokens_issued_total',
    help: 'Tokens and codes issued by oidc-provider, by type',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [type, count] of issued) this.inc({ type }, count);
    },
  });

  return {
    registry,
    httpRequest: (route, method, status, seconds) => http.record(route, method, status, seconds),
    login: (kind, outcome) => logins.inc({ kind, outcome }),
    wechatCall: (event) => {
      wechatDuration.observe({ api: event.api, outcome: event.outcome }, event.durationMs / 1000);
      if (event.outcome === 'ok') return;
      const errcode =
        event.outcome === 'transport'
          ? 'transport'
          : event.errcode === undefined
            ? 'shape'
            : String(event.errcode);
      wechatErrors.inc({ api: event.api, errcode });
    },
    rateLimited: (endpoint) => rateLimited.inc({ endpoint }),
    tokenIssued: (type) => issued.set(type, (issued.get(type) ?? 0) + 1),
  };
}

/**
 * Counts tokens as oidc-provider issues them (opaque ones are "saved", structured ones "issued")
 * and mini program logins (the token-exchange grant) by outcome.
 */
export function observeProvider(provider: Provider, metrics: Metrics): void {
  // The event names are built from the token types: typed loosely, as oidc-provider emits them.
  const on = provider.on.bind(provider) as (event: string, listener: () => void) => unknown;
  for (const type of TOKEN_TYPES) {
    for (const event of ['saved', 'issued']) on(`${type}.${event}`, () => metrics.tokenIssued(type));
  }
  const isTokenExchange = (ctx: { oidc?: { params?: Record<string, unknown> } }) =>
    ctx.oidc?.params?.grant_type === 'urn:ietf:params:oauth:grant-type:token-exchange';
  provider.on('grant.success', (ctx) => {
    if (isTokenExchange(ctx)) metrics.login('mini_program', 'ok');
  });
  provider.on('grant.error', (ctx, error: { error?: string }) => {
    if (isTokenExchange(ctx)) metrics.login('mini_program', error.error ?? 'error');
  });
}

/** The same connectors, counting each code exchange as a login by kind and outcome. */
export function countLogins(connectors: Connectors, metrics: Metrics): Connectors {
  const wrapped = new Map<LoginConnector, LoginConnector>();
  const wrap = <C extends LoginConnector | undefined>(connector: C): C => {
    if (!connector) return connector;
    let found = wrapped.get(connector);
    if (!found) {
      found = withLoginCount(connector, metrics);
      wrapped.set(connector, found);
    }
    return found as C;
  };
  return {
    website: wrap(connectors.website),
    officialAccount: wrap(connectors.officialAccount),
    byAppid: (appid) => wrap(connectors.byAppid(appid)),
  };
}

function withLoginCount<C extends LoginConnector>(connector: C, metrics: Metrics): C {
  const completeLogin = async (...args: Parameters<C['completeLogin']>) => {
    try {
      const identity = await (connector.completeLogin as (...a: unknown[]) => Promise<WeChatIdentity>)(
        ...args,
      );
      metrics.login(connector.kind, outcomeOf(identity, args[1] === 'snsapi_base'));
      return identity;
    } catch (error) {
      metrics.login(connector.kind, error instanceof UpstreamError ? error.code : 'error');
      throw error;
    }
  };
  return { ...connector, completeLogin } as C;
}

/**
 * What a code exchange ends as. The interaction refuses snapshot users and missing unionids; a
 * silent snsapi_base login without a unionid is not a failure: the person is asked for more.
 */
function outcomeOf(identity: WeChatIdentity, silent: boolean): string {
  if (identity.snapshotUser) return 'snapshot_user';
  if (identity.unionid) return 'ok';
  return silent ? 'base_needs_userinfo' : 'unionid_missing';
}

/**
 * Whether each store is up, as this instance's probes last found it (src/http/dependency-gate.ts):
 * the gauge an alert on an outage reads, where the 503s it causes only show as a rate.
 */
export function observeDependencies(metrics: Metrics, down: () => readonly string[]): void {
  new Gauge({
    name: 'dependency_up',
    help: 'Whether a store answers, as the last probe found it (1 up, 0 down), by dependency',
    labelNames: ['dependency'],
    registers: [metrics.registry],
    collect() {
      const isDown = new Set(down());
      for (const dependency of ['database', 'cache'])
        this.set({ dependency }, isDown.has(dependency) ? 0 : 1);
    },
  });
}

/** How long a scrape waits for the outbox's count before it answers with the last one. */
const OUTBOX_COUNT_WAIT_MS = 1_000;

/**
 * The account-event outbox (src/accounts/event-delivery.ts): the events waiting, read from the
 * database at each scrape (the same on every instance: the outbox is shared), and the events this
 * instance gave up after their last attempt, by client.
 *
 * A count that fails or is slow (the database down or hanging) leaves the gauge at its last value:
 * the scrape must still answer, with dependency_up{dependency="database"} 0 among its series, at
 * the moment an alert needs it; a failed collect failed the whole scrape with a 500. The
 * dependency monitor logs the outage.
 */
export function observeOutbox(
  metrics: Metrics,
  pending: () => Promise<number>,
  waitMs = OUTBOX_COUNT_WAIT_MS,
): (clientId: string) => void {
  new Gauge({
    name: 'account_events_pending',
    help: 'Account events waiting in the outbox for delivery or a retry (all instances; the last count while the database does not answer)',
    registers: [metrics.registry],
    async collect() {
      const count = await withinMs(pending(), waitMs).catch(() => undefined);
      if (count !== undefined) this.set(count);
    },
  });
  const givenUp = new Counter({
    name: 'account_events_given_up_total',
    help: 'Account events given up after their last delivery attempt, by client',
    labelNames: ['client'],
    registers: [metrics.registry],
  });
  return (client) => givenUp.inc({ client });
}

/** The promise's value, or undefined once `ms` have passed (the promise is left to settle alone). */
function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
  });
  // A rejection after the deadline is nobody's: handled here so it is not reported as unhandled.
  promise.catch(() => {});
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
