import type { Context } from 'koa';
import { z } from 'zod';
import { updateAccountProfile } from '../accounts/repository.ts';
import type { Secret } from '../config/secret.ts';
import { UpstreamError, type WeChatProfile } from '../upstream/wechat/types.ts';
import type { MiniProgramCaller } from './bearer.ts';
import type { MiniProgramDeps } from './deps.ts';
import { MiniProgramError, reloginRequired, upstreamFailure, userDataError } from './errors.ts';
import { readBody, textField, WECHAT_ANSWER_EXTRAS } from './request-body.ts';
import {
  checkWatermark,
  decodeEncryptedUserData,
  decryptUserData,
  UserDataError,
  verifyRawData,
} from './user-data.ts';

const decryptSchema = z
  .strictObject({
    encryptedData: textField(200_000),
    iv: textField(64),
    rawData: textField(100_000, 0).optional(),
    signature: textField(128, 0).optional(),
    ...WECHAT_ANSWER_EXTRAS,
  })
  .refine((body) => (body.rawData === undefined) === (body.signature === undefined), {
    message: 'rawData and signature go together',
    path: ['signature'],
  });

/**
 * POST /mini-program/decrypt — encrypted open data (wx.getUserInfo, wx.getShareInfo, wx.getWeRunData...)
 * decrypted with the session key the server kept, its watermark checked, an optional rawData
 * signature verified. The profile fields of a signed rawData update the account. Any refusal writes
 * nothing.
 */
export async function decrypt(ctx: Context, deps: MiniProgramDeps, caller: MiniProgramCaller): Promise<void> {
  const body = readBody(ctx, decryptSchema);
  const { identity, connector } = caller;
  const encrypted = guard(() => decodeEncryptedUserData(body));
  const held = await deps.sessionKeys.get(identity.appid, identity.openid);
  if (!held) throw reloginRequired('session_key_missing');
  const sessionKey = held.key;

  // A wrong signature or padding means altered data or a session key WeChat has replaced since;
  // WeChat's checksession tells which, and a stale key sends the mini program back to wx.login.
  const orStale = async (error: UserDataError): Promise<never> => {
    if (await isStale(deps, caller, sessionKey)) {
      await deps.sessionKeys.forgetStale(identity.appid, identity.openid, held);
      throw reloginRequired('session_key_stale');
    }
    throw userDataError(error);
  };

  const signed = body.rawData !== undefined && body.signature !== undefined;
  if (signed) {
    try {
      verifyRawData(body.rawData as string, body.signature as string, sessionKey);
    } catch (error) {
      if (!(error instanceof UserDataError)) throw error;
      await orStale(error);
    }
  }
  let data: Record<string, unknown>;
  try {
    data = decryptUserData(sessionKey, encrypted);
  } catch (error) {
    if (!(error instanceof UserDataError)) throw error;
    return orStale(error);
  }
  guard(() =>
    checkWatermark(data, {
      appid: connector.app.appid,
      now: Math.floor(deps.now().getTime() / 1000),
      maxAgeSeconds: deps.encryptedDataMaxAge,
    }),
  );
  // Old-style user info carries the ids: data for someone else is not this person's profile.
  if (
    (typeof data.openId === 'string' && data.openId !== identity.openid) ||
    (typeof data.unionId === 'string' && identity.unionid !== null && data.unionId !== identity.unionid)
  ) {
    throw new MiniProgramError(400, 'identity_mismatch', 'encryptedData belongs to another WeChat user', {
      field: 'encryptedData',
    });
  }

  // The profile is taken from what WeChat signed, never from the encrypted data alone: that has no
  // MAC, and whoever knows its plaintext (the person's own profile) can alter its first block
  // through the iv they send. rawData's signature is keyed with the session key.
  const profile = signed ? profileOf(signedRawData(body.rawData as string)) : undefined;
  if (profile) await updateAccountProfile(deps.db, caller.account.id, profile, deps.now());
  ctx.status = 200;
  ctx.body = { data };
}

function guard<T>(run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof UserDataError) throw userDataError(error);
    throw error;
  }
}

/**
 * Whether WeChat has replaced this session key. When WeChat is busy the caller hears so (503);
 * when it refuses for another reason the data error stands.
 */
async function isStale(
  deps: MiniProgramDeps,
  caller: MiniProgramCaller,
  sessionKey: Secret,
): Promise<boolean> {
  try {
    return !(await caller.connector.checkSession(caller.identity.openid, sessionKey));
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    deps.logger.warn(
      { appid: caller.identity.appid, ...error.logFields() },
      'could not ask WeChat whether the session key is stale',
    );
    if (error.transient) throw upstreamFailure(error);
    return false;
  }
}

/** The signed rawData as an object (wx.getUserInfo's profile, §10); nothing when it is not JSON. */
function signedRawData(rawData: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(rawData);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** wx.getUserInfo's camelCase profile fields (§10), when the data has them. */
function profileOf(data: Record<string, unknown>): WeChatProfile | undefined {
  const nickname = typeof data.nickName === 'string' ? data.nickName : undefined;
  const avatarUrl = typeof data.avatarUrl === 'string' ? data.avatarUrl : undefined;
  if (nickname === undefined && avatarUrl === undefined) return undefined;
  return { nickname, avatarUrl, language: typeof data.language === 'string' ? data.language : undefined };
}
