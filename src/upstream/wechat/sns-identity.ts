import type { SnsAccessToken, SnsUserInfo, WeChatClient } from './client.ts';
import { UpstreamError, type WeChatApp, type WeChatIdentity, type WeChatProfile } from './types.ts';

/**
 * The identity behind an exchanged sns code, shared by the website and official-account connectors:
 * the token's openid and unionid, and the profile from sns/userinfo when `readProfile` (the caller
 * knows whether the token's scope allows it). A userinfo answer about another person is refused.
 */
export async function snsIdentity(
  client: WeChatClient,
  app: WeChatApp,
  token: SnsAccessToken,
  readProfile: boolean,
  onProfileUnread?: ProfileUnread,
): Promise<WeChatIdentity> {
  const info = readProfile
    ? await readUserInfo(client, token, (error) => onProfileUnread?.(app, error))
    : undefined;
  if (info !== undefined && info.openid !== token.openid) {
    throw new UpstreamError('unexpected', 'sns/userinfo', undefined, {
      detail: "openid differs from the access token's",
    });
  }
  if (info?.unionid !== undefined && token.unionid !== undefined && info.unionid !== token.unionid) {
    throw new UpstreamError('unexpected', 'sns/userinfo', undefined, {
      detail: "unionid differs from the access token's",
    });
  }
  return {
    kind: app.kind,
    appid: app.appid,
    openid: token.openid,
    unionid: token.unionid ?? info?.unionid,
    profile: info === undefined ? undefined : toProfile(info),
    snapshotUser: token.isSnapshotUser,
  };
}

/**
 * Told of a profile read that failed while the login went on without it, which nothing else would
 * say (server.ts logs it). A failure that fails the login is reported as any other, by the login.
 */
export type ProfileUnread = (app: WeChatApp, error: UpstreamError) => void;

/**
 * The profile is a nicety once the token already names the unionid: the code is spent, so failing
 * the login over a nickname would make the person scan again. Without a unionid from the token,
 * userinfo is the only source and its failure stands.
 */
async function readUserInfo(
  client: WeChatClient,
  token: SnsAccessToken,
  onUnread: (error: UpstreamError) => void,
): Promise<SnsUserInfo | undefined> {
  try {
    return await client.userInfo(token.accessToken, token.openid);
  } catch (error) {
    if (!(error instanceof UpstreamError && token.unionid !== undefined)) throw error;
    onUnread(error);
    return undefined;
  }
}

function toProfile(info: SnsUserInfo): WeChatProfile {
  return { nickname: info.nickname, avatarUrl: info.headimgurl, sex: info.sex, language: info.language };
}
