import { DuplicateDeliveries } from './duplicate-delivery.ts';
import { type Fault, FaultQueue, type FaultSpec } from './faults.ts';
import { GrantStore, type UserToken } from './grants.ts';
import { randomSeed, wechatStyleId } from './ids.ts';
import { SandboxInputError } from './input-error.ts';
import { MiniProgramSandbox } from './mini-program.ts';
import { parseHexColor } from './png.ts';
import { QrSessionStore } from './qr-sessions.ts';
import type { SandboxApp, SandboxContentType, SandboxDenyMode, SandboxOptions } from './types.ts';
import { type NewUser, type SandboxUser, UserDirectory, type UserPatch } from './users.ts';

/** What the control API and the pages show of a person: ids as every configured app sees them. */
export interface SandboxUserSummary {
  id: string;
  nickname: string;
  unionid: string;
  /** appid -> openid, for every configured app. */
  openids: Record<string, string>;
  /** Size-132 avatar URL on the given origin; null when the person has no avatar. */
  avatarUrl: string | null;
  /** Present (true) only while the person is on the snapshot page. */
  snapshot?: true;
}

const MAX_NICKNAME_LENGTH = 32;

/**
 * Trimmed, 1..32 characters (emoji count as one), no control characters unless explicitly allowed:
 * WeChat documents a nickname as any UTF-8, so tests may ask for a person whose nickname holds
 * NUL and the like, to see the bridge cope with what WeChat could send.
 */
export function normalizeNickname(raw: string, options: { allowControlCharacters?: boolean } = {}): string {
  const nickname = raw.trim();
  const length = [...nickname].length;
  if (length === 0) throw new SandboxInputError('nickname is empty');
  if (length > MAX_NICKNAME_LENGTH)
    throw new SandboxInputError(`nickname is longer than ${MAX_NICKNAME_LENGTH}`);
  if (!options.allowControlCharacters && /\p{Cc}/u.test(nickname))
    throw new SandboxInputError(
      'nickname contains control characters (allowControlCharacters: true lets them in)',
    );
  return nickname;
}

/** A person to create: NewUser, and whether the nickname may hold control characters (default no). */
export interface NewUserInput extends NewUser {
  allowControlCharacters?: boolean | undefined;
}

function normalizeColor(color: string | null | undefined): string | null | undefined {
  if (color === null || color === undefined) return color;
  const rgb = parseHexColor(color);
  if (!rgb) throw new SandboxInputError('avatarColor must look like #07c160');
  return `#${color.replace(/^#/, '').toLowerCase()}`;
}

function validateApps(apps: SandboxApp[]): Map<string, SandboxApp> {
  const byId = new Map<string, SandboxApp>();
  for (const app of apps) {
    if (!app.appid || !app.secret)
      throw new SandboxInputError('every sandbox app needs an appid and a secret');
    if (!['website', 'official_account', 'mini_program'].includes(app.kind)) {
      throw new SandboxInputError(`app ${app.appid}: unknown kind ${String(app.kind)}`);
    }
    if (byId.has(app.appid)) throw new SandboxInputError(`app ${app.appid} is configured twice`);
    byId.set(app.appid, app);
  }
  return byId;
}

/**
 * Everything the emulator remembers, in memory, for one process. Routes read and
 * change it; in-process tests use the same methods the control API exposes.
 */
export class SandboxState {
  readonly contentType: SandboxContentType;
  readonly denyMode: SandboxDenyMode;
  readonly seed: string;
  readonly grants = new GrantStore();
  readonly faults = new FaultQueue();
  readonly qrSessions = new QrSessionStore();
  /** Mini programs: wx.login codes, session keys, phone codes, app access tokens. */
  readonly miniPrograms: MiniProgramSandbox = new MiniProgramSandbox(this);
  /** The "deliver the callback twice" mode and what its copies got back. */
  readonly deliveries: DuplicateDeliveries;
  readonly #apps: Map<string, SandboxApp>;
  /** appid -> bound to the Open Platform, as switched at run time (see setBound). */
  readonly #boundNow = new Map<string, boolean>();
  readonly #users: UserDirectory;
  readonly #now: () => number;

  constructor(options: SandboxOptions) {
    this.#apps = validateApps(options.apps);
    this.contentType = options.contentType ?? 'text/plain';
    this.denyMode = options.denyMode ?? 'redirect_without_code';
    this.seed = options.seed ?? randomSeed();
    this.#now = options.now ?? Date.now;
    this.#users = new UserDirectory(this.seed, options.stableCreations ?? true);
    this.deliveries = new DuplicateDeliveries(options.deliverTwice ?? false);
  }

  now(): number {
    return this.#now();
  }

  app(appid: string): SandboxApp | undefined {
    return this.#apps.get(appid);
  }

  apps(): SandboxApp[] {
    return [...this.#apps.values()];
  }

  /** Default true (§12): unbound apps never see a unionid. A run-time switch (setBound) wins. */
  isBound(app: SandboxApp): boolean {
    return this.#boundNow.get(app.appid) ?? app.boundToOpenPlatform ?? true;
  }

  /**
   * Binds an app to the Open Platform account, or unbinds it, from now on (as its owner can in
   * WeChat's console): what it was configured with no longer counts. Throws for an unknown appid.
   */
  setBound(appid: string, bound: boolean): void {
    if (!this.#apps.has(appid)) throw new SandboxInputError(`unknown appid ${appid}`);
    this.#boundNow.set(appid, bound);
  }

  listUsers(): SandboxUser[] {
    return this.#users.list();
  }

  getUser(id: string): SandboxUser | undefined {
    return this.#users.get(id);
  }

  createUser(input: NewUserInput): SandboxUser {
    const { allowControlCharacters, ...user } = input;
    return this.#users.create({
      ...user,
      nickname: normalizeNickname(user.nickname, { allowControlCharacters }),
      avatarColor: normalizeColor(input.avatarColor),
    });
  }

  /** undefined when there is no such user. */
  updateUser(id: string, patch: UserPatch): SandboxUser | undefined {
    return this.#users.update(id, {
      ...patch,
      nickname: patch.nickname === undefined ? undefined : normalizeNickname(patch.nickname),
      avatarColor: normalizeColor(patch.avatarColor),
    });
  }

  /** The person's openid in this app: stable per (seed, appid, user), shared prefix per app like WeChat's. */
  openid(appid: string, userId: string): string {
    return wechatStyleId(this.seed, `app:${appid}`, userId);
  }

  /** The ids a token stands for: a snapshot-page token carries virtual ones (§3.1). */
  tokenIds(token: UserToken): { openid: string; unionid: string | undefined } {
    const user = this.#users.get(token.userId);
    if (token.snapshot) {
      return {
        openid: wechatStyleId(this.seed, `snapshot:${token.appid}`, token.userId),
        unionid: wechatStyleId(this.seed, 'snapshot:open-platform', token.userId),
      };
    }
    return { openid: this.openid(token.appid, token.userId), unionid: user?.unionid };
  }

  avatarColor(avatarId: string): string | undefined {
    return this.#users.avatarColor(avatarId);
  }

  /** headimgurl: '' without an avatar; the last segment is the size, as WeChat's (§7). */
  avatarUrl(user: SandboxUser, origin: string, size = 132): string {
    return user.avatar ? `${origin}/sandbox/avatars/${user.avatar.id}/${size}` : '';
  }

  summary(user: SandboxUser, origin: string): SandboxUserSummary {
    const openids: Record<string, string> = {};
    for (const app of this.#apps.values()) openids[app.appid] = this.openid(app.appid, user.id);
    return {
      id: user.id,
      nickname: user.nickname,
      unionid: user.unionid,
      openids,
      avatarUrl: this.avatarUrl(user, origin) || null,
      ...(user.snapshot ? { snapshot: true as const } : {}),
    };
  }

  /** Issues a code as if the person had scanned and allowed: lets tests skip the browser page. */
  issueCode(grant: { appid: string; userId: string; scope?: string; snapshot?: boolean }): string {
    const app = this.#apps.get(grant.appid);
    if (!app) throw new SandboxInputError(`unknown appid ${grant.appid}`);
    if (!this.#users.get(grant.userId)) throw new SandboxInputError(`unknown user ${grant.userId}`);
    return this.grants.issueCode(
      {
        appid: app.appid,
        userId: grant.userId,
        scope: grant.scope ?? 'snsapi_login',
        kind: app.kind,
        snapshot: grant.snapshot,
      },
      this.now(),
    );
  }

  injectFault(spec: FaultSpec): Fault {
    return this.faults.inject(spec);
  }

  clearFaults(): void {
    this.faults.clear();
  }
}
