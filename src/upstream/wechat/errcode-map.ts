import type { UpstreamErrorCode } from './types.ts';

/**
 * WeChat errcodes the bridge tells apart (wechat-api.md §4-§7, §13). Everything
 * absent here is 'unexpected': the edges show a generic failure and logs keep the
 * errcode for diagnosis.
 */
const UPSTREAM_CODES: ReadonlyMap<number, UpstreamErrorCode> = new Map<number, UpstreamErrorCode>([
  [-1, 'unavailable'],
  [40029, 'code_invalid'],
  [42003, 'code_invalid'],
  [40163, 'code_used'],
  [40030, 'refresh_token_invalid'],
  [42002, 'refresh_token_invalid'],
  [42007, 'refresh_token_invalid'],
  [40001, 'token_invalid'],
  [40014, 'token_invalid'],
  [42001, 'token_invalid'],
  [40003, 'token_invalid'],
  [41001, 'token_invalid'],
  [48001, 'scope_insufficient'],
  [50001, 'scope_insufficient'],
  [40226, 'blocked'],
  // 用户受限: WeChat restricts this person's account; no retry of ours helps (wechat-api.md §13).
  [50002, 'blocked'],
  [45009, 'rate_limited'],
  [45011, 'rate_limited'],
  [40013, 'app_config'],
  [40125, 'app_config'],
  [40164, 'app_config'],
  [61004, 'app_config'],
  [40243, 'app_config'],
  [41002, 'app_config'],
  [41004, 'app_config'],
  [48004, 'app_config'],
  [87009, 'signature_invalid'],
]);

/**
 * The UpstreamErrorCode for a non-zero WeChat errcode. `sentAppSecret`: the call authenticated with
 * the AppSecret, not an access token. There 40001 cannot be about a token (none was sent): WeChat
 * answers it for a wrong AppSecret on its token calls (wechat-api.md §11 "40001 (bad secret *or* bad
 * token)", §13), which is our configuration.
 */
export function upstreamCodeForErrcode(errcode: number, sentAppSecret = false): UpstreamErrorCode {
  if (errcode === 40001 && sentAppSecret) return 'app_config';
  return UPSTREAM_CODES.get(errcode) ?? 'unexpected';
}
