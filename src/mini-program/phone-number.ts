import type { Context } from 'koa';
import { z } from 'zod';
import { bindPhoneAndAnnounce } from '../accounts/identity-events.ts';
import { isStoreOutage, OUTAGE_RETRY_AFTER_SECONDS } from '../storage/outage.ts';
import { UpstreamError } from '../upstream/wechat/types.ts';
import { ACCOUNT_GONE, invalidToken, type MiniProgramCaller } from './bearer.ts';
import type { MiniProgramDeps } from './deps.ts';
import { MiniProgramError, upstreamFailure } from './errors.ts';
import { readBody, textField, WECHAT_ANSWER_EXTRAS } from './request-body.ts';

const phoneSchema = z.strictObject({
  // As WeChat gives it (letters and digits): anything else cannot be one, and a lone surrogate
  // would not even go into the call's URL encoding (a 500 before).
  code: textField(512).regex(/^[\x21-\x7e]+$/, 'is not a getPhoneNumber code (printable ASCII)'),
  // The button's e.detail as it came: older base libraries put the number's encrypted form beside
  // the code, which the code makes needless.
  ...WECHAT_ANSWER_EXTRAS,
  encryptedData: z.unknown().optional(),
  iv: z.unknown().optional(),
});

/**
 * POST /mini-program/phone-number — the code of a getPhoneNumber button, exchanged at
 * wxa/business/getuserphonenumber together with the caller's openid (WeChat checks they belong
 * together). The number becomes the account's verified phone_number (phone scope). When it
 * recovers a waiting account (repository.ts, recoverAccountByPhone), the answer says so with
 * `account_recovered: true`: the caller's token named the account folded into it, which is gone,
 * so the mini program logs in again (wx.login and the token exchange) to get the recovered one's.
 */
export async function phoneNumber(
  ctx: Context,
  deps: MiniProgramDeps,
  caller: MiniProgramCaller,
): Promise<void> {
  const { code } = readBody(ctx, phoneSchema);
  const { identity, connector } = caller;
  let info: Awaited<ReturnType<typeof connector.phoneNumber>>;
  try {
    info = await connector.phoneNumber(code, identity.openid);
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error;
    const fields = { appid: identity.appid, ...error.logFields() };
    // 40003: WeChat found the code was not issued to this openid (the optional check §10.1 describes).
    if (error.code === 'code_invalid' || error.code === 'code_used' || error.errcode === 40003) {
      deps.logger.warn(fields, 'phone number code refused');
      throw new MiniProgramError(
        400,
        'invalid_phone_code',
        'the getPhoneNumber code is invalid, expired, already used or belongs to another user: ask again with the button',
        { field: 'code' },
      );
    }
    deps.logger[error.transient ? 'warn' : 'error'](fields, 'phone number exchange failed');
    throw upstreamFailure(error, 'the getPhoneNumber code may be spent: ask again with the button shortly');
  }

  const phone = e164(info.countryCode, info.purePhoneNumber);
  if (phone === undefined) {
    deps.logger.error({ appid: identity.appid }, 'WeChat returned a phone number that is not digits');
    throw new MiniProgramError(500, 'server_error', 'WeChat returned an unusable phone number');
  }
  const binding = await bindPhone(deps, caller, phone);
  if (!binding) {
    // Deleted while WeChat was asked: the token's account is gone, as bearer.ts answers afterwards.
    deps.logger.info({ appid: identity.appid }, 'phone number not bound: the account was deleted meanwhile');
    throw invalidToken(ACCOUNT_GONE);
  }
  const recovered = binding.removedSubject !== undefined;
  deps.logger.info(
    { appid: identity.appid, accountId: caller.account.id, recovered },
    'verified phone number bound',
  );
  ctx.status = 200;
  ctx.body = {
    phone_number: phone,
    phone_number_verified: true,
    ...(recovered ? { account_recovered: true } : {}),
  };
}

/**
 * The verified number, bound to the caller's account. A store out of reach or not answering is a
 * 503 temporarily_unavailable telling the mini program what to do: WeChat has spent the button's
 * code, which is refused from now on (invalid_phone_code), so the person must press it again.
 */
async function bindPhone(deps: MiniProgramDeps, caller: MiniProgramCaller, phone: string) {
  try {
    // A recovery's account events are written in its transaction (identity-events.ts).
    return await bindPhoneAndAnnounce(deps, caller.account.id, phone, deps.now());
  } catch (error) {
    if (!isStoreOutage(error)) throw error;
    deps.logger.warn(
      { appid: caller.identity.appid, accountId: caller.account.id, err: error },
      'verified phone number not bound: a store is unavailable',
    );
    throw new MiniProgramError(
      503,
      'temporarily_unavailable',
      'the server could not save the phone number (its storage did not answer); ask again with the button shortly (this getPhoneNumber code is spent)',
      { retryAfter: OUTAGE_RETRY_AFTER_SECONDS },
    );
  }
}

/** OIDC recommends E.164: "+", the country code, the national number. */
function e164(countryCode: string, purePhoneNumber: string): string | undefined {
  const digits = purePhoneNumber.replace(/[\s-]/g, '');
  if (!/^\d{1,4}$/.test(countryCode) || !/^\d{4,14}$/.test(digits)) return undefined;
  return `+${countryCode}${digits}`;
}
