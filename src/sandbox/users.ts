import { randomBytes } from 'node:crypto';
import { derive, wechatStyleId } from './ids.ts';

export interface SandboxAvatar {
  /** Path segment of the avatar URL; a new one on every change, and the old URL stops working. */
  id: string;
  /** '#rrggbb' */
  color: string;
}

export interface SandboxUser {
  id: string;
  nickname: string;
  unionid: string;
  /** The `language` field of /sns/userinfo (the person's WeChat UI language). */
  language: string;
  /** undefined: the person has no avatar (headimgurl ""). */
  avatar: SandboxAvatar | undefined;
  /**
   * The person is on WeChat's snapshot page (快照页, §3.1): an Official Account snsapi_userinfo
   * authorization yields a virtual account (is_snapshotuser 1) until they tap 使用完整服务.
   */
  snapshot: boolean;
}

export interface NewUser {
  nickname: string;
  /** '#rrggbb'; a colour derived from the id when absent, no avatar when null. */
  avatarColor?: string | null | undefined;
  language?: string | undefined;
  snapshot?: boolean | undefined;
}

export interface UserPatch {
  nickname?: string | undefined;
  /** A new avatar of this colour ('#rrggbb'), or null to remove the avatar. */
  avatarColor?: string | null | undefined;
  /** A new avatar (new URL) in a new colour. */
  newAvatar?: boolean | undefined;
  /** On (or off) the snapshot page. */
  snapshot?: boolean | undefined;
}

const PALETTE = ['#07c160', '#10aeff', '#fa9d3b', '#e64340', '#6467f0', '#1485ee', '#91d300', '#576b95'];

/** The people every sandbox starts with: Chinese, emoji and Latin nicknames exercise encodings. */
export const SEEDED_USERS: readonly NewUser[] = [
  { nickname: '张三', avatarColor: '#07c160' },
  { nickname: '🐼熊猫', avatarColor: '#333333' },
  { nickname: 'Alice', avatarColor: '#e64340', language: 'en' },
];

/**
 * The fake WeChat accounts. Ids come from the seed and the order of creation, so
 * a restarted sandbox with the same seed (and the same creations) has the same people; without
 * `stableCreations`, only the seeded people are the same, and those created at run time are new
 * people after every restart.
 */
export class UserDirectory {
  readonly #seed: string;
  /** Part of the ids of people created at run time: empty when they are stable across restarts. */
  readonly #run: string;
  readonly #users = new Map<string, SandboxUser>();
  /** avatar id -> colour, current avatars only. */
  readonly #avatars = new Map<string, string>();
  #created = 0;
  #avatarVersions = 0;

  constructor(seed: string, stableCreations = true) {
    this.#seed = seed;
    this.#run = '';
    for (const user of SEEDED_USERS) this.create(user);
    if (!stableCreations) this.#run = `:${randomBytes(8).toString('hex')}`;
  }

  list(): SandboxUser[] {
    return [...this.#users.values()];
  }

  get(id: string): SandboxUser | undefined {
    return this.#users.get(id);
  }

  create(input: NewUser): SandboxUser {
    const index = this.#created++;
    const id = `u${derive(this.#seed, `user:${index}${this.#run}`, 10)}`;
    const user: SandboxUser = {
      id,
      nickname: input.nickname,
      unionid: wechatStyleId(this.#seed, 'open-platform', id),
      language: input.language ?? 'zh_CN',
      avatar: undefined,
      snapshot: input.snapshot ?? false,
    };
    this.#users.set(id, user);
    if (input.avatarColor !== null) this.#replaceAvatar(user, input.avatarColor ?? this.#defaultColor(id));
    return user;
  }

  update(id: string, patch: UserPatch): SandboxUser | undefined {
    const user = this.#users.get(id);
    if (!user) return undefined;
    if (patch.nickname !== undefined) user.nickname = patch.nickname;
    if (patch.snapshot !== undefined) user.snapshot = patch.snapshot;
    if (patch.avatarColor === null) this.#removeAvatar(user);
    else if (patch.avatarColor !== undefined) this.#replaceAvatar(user, patch.avatarColor);
    else if (patch.newAvatar) this.#replaceAvatar(user, this.#nextColor(user));
    return user;
  }

  /** Colour of a current avatar; undefined for unknown or replaced avatars. */
  avatarColor(avatarId: string): string | undefined {
    return this.#avatars.get(avatarId);
  }

  #replaceAvatar(user: SandboxUser, color: string): void {
    this.#removeAvatar(user);
    const avatarId = derive(this.#seed, `avatar:${user.id}:${this.#avatarVersions++}`, 16);
    user.avatar = { id: avatarId, color: color.toLowerCase() };
    this.#avatars.set(avatarId, user.avatar.color);
  }

  #removeAvatar(user: SandboxUser): void {
    if (user.avatar) this.#avatars.delete(user.avatar.id);
    user.avatar = undefined;
  }

  #defaultColor(id: string): string {
    return PALETTE[derive(this.#seed, `color:${id}`, 1).charCodeAt(0) % PALETTE.length]!;
  }

  #nextColor(user: SandboxUser): string {
    const current = user.avatar ? PALETTE.indexOf(user.avatar.color) : -1;
    return PALETTE[(current + 1) % PALETTE.length]!;
  }
}
