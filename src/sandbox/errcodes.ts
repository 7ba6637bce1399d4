/** errmsg texts as WeChat writes them (§13); the wire adds the `, rid: …` suffix. */
const ERRMSG: Record<number, string> = {
  [-1]: 'system error',
  40001: 'invalid credential, access_token is invalid or not latest',
  40002: 'invalid grant_type',
  40003: 'invalid openid',
  40013: 'invalid appid',
  40014: 'invalid access_token',
  40029: 'invalid code',
  40030: 'invalid refresh_token',
  40125: 'invalid appsecret',
  40163: 'code been used',
  40164: 'invalid ip, not in whitelist',
  40226: 'code blocked',
  41001: 'access_token missing',
  41002: 'appid missing',
  41003: 'refresh_token missing',
  41004: 'appsecret missing',
  41008: 'missing code',
  41009: 'missing openid',
  42001: 'access_token expired',
  42002: 'refresh_token expired',
  42003: 'code expired',
  45009: 'reach max api daily quota limit',
  45011: 'api minute-quota reach limit mustslower retry next minute',
  48001: 'api unauthorized',
  48004: 'api forbidden for irregularities',
  50001: 'user unauthorized',
  50002: 'user limited',
  47001: 'data format error',
  87008: 'invalid sig_method',
  87009: 'invalid signature',
};

export function errmsgFor(errcode: number): string {
  return ERRMSG[errcode] ?? 'sandbox injected error';
}
