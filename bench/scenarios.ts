import type * as oidc from 'openid-client';
import type { SandboxUser } from '../test/helpers/flow.ts';
import type { EngineUnderTest } from './engines.ts';
import type { Operation } from './load.ts';
import { type HeldTokens, login } from './operations.ts';
import {
  ALGORITHMS,
  type Algorithm,
  type BenchClient,
  CONSENT_CLIENT,
  firstPartyClient,
  MINI_PROGRAM_BENCH_CLIENT,
} from './spec.ts';

/**
 * One thing measured on one engine; a variant is a bridge-only extra, profiled only when named
 * (beside the bare engine's target it is compared with).
 */
export interface Target {
  scenario: string;
  e: EngineUnderTest;
  op: Operation;
  /** The bare-engine scenario it is compared with; its own name when absent. */
  comparedTo?: string;
  variant?: boolean;
}

/** A group of targets measured together, in alternating slices. */
export interface Scenario {
  name: string;
  /** The names of its bridge-only variants, which --profile also takes. */
  variants?: string[];
  targets(world: World): Promise<Target[]>;
}

const RS256_CLIENT = firstPartyClient('RS256');

/**
 * What the scenarios share in one storage setup: both engines, the sandbox's people (taken in
 * turn; each has logged in once before the login scenario measures, so its logins are returning
 * people's), and the token sets the token scenarios work with.
 */
export class World {
  readonly bare: EngineUnderTest;
  readonly bridge: EngineUnderTest;
  readonly sandboxUrl: string;
  /** Closed-loop workers, and so token sets held per engine and algorithm. */
  readonly workers: number;
  readonly #users: SandboxUser[];
  #nextUser = 0;
  #holding: Promise<void> | undefined;
  #welcoming: Promise<void> | undefined;

  constructor(p: {
    bare: EngineUnderTest;
    bridge: EngineUnderTest;
    users: SandboxUser[];
    sandboxUrl: string;
    workers: number;
  }) {
    this.bare = p.bare;
    this.bridge = p.bridge;
    this.#users = p.users;
    this.sandboxUrl = p.sandboxUrl;
    this.workers = p.workers;
  }

  get engines(): EngineUnderTest[] {
    return [this.bare, this.bridge];
  }

  nextUser(): SandboxUser {
    return this.#users[this.#nextUser++ % this.#users.length] as SandboxUser;
  }

  login(
    e: EngineUnderTest,
    client: BenchClient,
    extra: { scope: string; prompt?: string; consentPage?: boolean },
  ): Promise<HeldTokens> {
    return login(e.engine, e.rps.get(client.client_id) as oidc.Configuration, {
      ...extra,
      user: this.nextUser(),
      alg: client.id_token_signed_response_alg as Algorithm,
    });
  }

  /**
   * Once, untimed: every person logs in to the bridge (website and mini program), so that the
   * measured logins are returning people's, as nearly all of a provider's logins are, and allows the
   * third-party client on its consent page, which is then remembered. A person's first login also
   * creates the account and downloads the avatar (the bare engine has no accounts to create).
   */
  welcomeEveryone(): Promise<void> {
    this.#welcoming ??= (async () => {
      const waiting = [...this.#users];
      const rp = this.bridge.rps.get(RS256_CLIENT.client_id) as oidc.Configuration;
      const consentRp = this.bridge.rps.get(CONSENT_CLIENT.client_id) as oidc.Configuration;
      const worker = async () => {
        for (let user = waiting.shift(); user; user = waiting.shift()) {
          await login(this.bridge.engine, rp, { scope: 'openid profile', user, alg: 'RS256' });
          const first = { scope: 'openid profile', user, alg: 'RS256', consentPage: true } as const;
          await login(this.bridge.engine, consentRp, first);
          await this.bridge.calls.miniProgramLogin(this.sandboxUrl, user, MINI_PROGRAM_BENCH_CLIENT);
        }
      };
      await Promise.all(Array.from({ length: this.workers }, worker));
    })();
    return this.#welcoming;
  }

  /**
   * A full login by a fresh browser (no offline_access: what most relying parties ask), without a
   * consent page: a first-party client, or a third-party one the person allowed at their welcome.
   */
  loginOp(e: EngineUnderTest, client: BenchClient = RS256_CLIENT): Operation {
    return () => this.login(e, client, { scope: 'openid profile', consentPage: false });
  }

  /** The same operation on both engines. */
  both(scenario: string, op: (e: EngineUnderTest) => Operation): Target[] {
    return this.engines.map((e) => ({ scenario, e, op: op(e) }));
  }

  /** Per engine and algorithm, one token set per worker, from logins with offline_access (once). */
  holdTokens(): Promise<void> {
    this.#holding ??= (async () => {
      for (const e of this.engines) {
        for (const alg of ALGORITHMS) {
          const client = firstPartyClient(alg);
          const logins = Array.from({ length: this.workers }, () =>
            this.login(e, client, { scope: 'openid profile offline_access', prompt: 'consent' }),
          );
          e.held.set(alg, await Promise.all(logins));
        }
      }
    })();
    return this.#holding;
  }

  held(e: EngineUnderTest, alg: Algorithm, worker: number): HeldTokens {
    return (e.held.get(alg) as HeldTokens[])[worker] as HeldTokens;
  }
}

const tokenScenario = (name: string, op: (world: World, e: EngineUnderTest) => Operation): Scenario => ({
  name,
  async targets(world) {
    await world.holdTokens();
    return world.both(name, (e) => op(world, e));
  },
});

export const SCENARIO_LIST: Scenario[] = [
  {
    name: 'login',
    variants: ['login, consent remembered', 'login + consent page', 'mini-program login'],
    async targets(world) {
      await world.welcomeEveryone();
      const { bridge } = world;
      return [
        ...world.both('login', (e) => world.loginOp(e)),
        // A third-party client the person allowed at their welcome login: consent remembered, no page.
        {
          scenario: 'login, consent remembered',
          e: bridge,
          op: world.loginOp(bridge, CONSENT_CLIENT),
          comparedTo: 'login',
          variant: true,
        },
        // The same client demanding prompt=consent: the consent page and its POST every time.
        {
          scenario: 'login + consent page',
          e: bridge,
          op: () =>
            world.login(bridge, CONSENT_CLIENT, {
              scope: 'openid profile',
              prompt: 'consent',
              consentPage: true,
            }),
          comparedTo: 'login',
          variant: true,
        },
        // The mini program's login: no browser, one token exchange; compared with the bare login.
        {
          scenario: 'mini-program login',
          e: bridge,
          op: () =>
            bridge.calls.miniProgramLogin(world.sandboxUrl, world.nextUser(), MINI_PROGRAM_BENCH_CLIENT),
          comparedTo: 'login',
          variant: true,
        },
      ];
    },
  },
  tokenScenario('userinfo', (world, e) => (w) => e.calls.userinfo(world.held(e, 'RS256', w))),
  tokenScenario(
    'introspection',
    (world, e) => (w) => e.calls.introspect(RS256_CLIENT, world.held(e, 'RS256', w)),
  ),
  ...ALGORITHMS.map((alg) =>
    tokenScenario(
      `refresh_token ${alg}`,
      (world, e) => (w) => e.calls.refresh(firstPartyClient(alg), world.held(e, alg, w), alg),
    ),
  ),
];

/** The names --only takes ("memory" is the memory phase, before the scenarios). */
export const SCENARIOS = ['memory', ...SCENARIO_LIST.map((scenario) => scenario.name)];

/** The names --profile takes: every scenario and every variant. */
export const PROFILED = [
  ...SCENARIO_LIST.map((scenario) => scenario.name),
  ...SCENARIO_LIST.flatMap((scenario) => scenario.variants ?? []),
];

/** Throws unless a profiling run (`flag`: --profile, --instructions) can take scenario `name`. */
export function assertProfiled(flag: string, name: string): void {
  if (!PROFILED.includes(name)) throw new Error(`${flag}: no scenario "${name}" (${PROFILED.join(', ')})`);
}

/** The scenario group measuring `name`, itself or one of its variants. */
export function scenarioOf(name: string): Scenario | undefined {
  return SCENARIO_LIST.find((s) => s.name === name || s.variants?.includes(name));
}

/**
 * The two targets a profile of `name` measures: the bare engine's and the bridge's. A variant is
 * the bridge's, beside the bare target it is compared with.
 */
export function profiledTargets(targets: Target[], name: string): Target[] {
  const variant = targets.find((t) => t.variant && t.scenario === name);
  if (!variant) return targets.filter((t) => t.scenario === name && !t.variant);
  const bare = targets.find((t) => t.e.engine === 'bare' && t.scenario === variant.comparedTo);
  return bare ? [bare, variant] : [variant];
}
