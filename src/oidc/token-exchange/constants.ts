/** RFC 8693's grant type. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** Ours: the subject token is the code of a mini program's wx.login() (wechat-api.md §8). */
export const JS_CODE_TOKEN_TYPE = 'urn:wechat:params:oauth:token-type:js_code';

/** RFC 8693 §3: what the exchange issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/**
 * Our client metadata: the mini_program app (its AppID) a client stands for. It binds the client's
 * token exchanges and its access tokens to that app's wx.login codes and session keys.
 */
export const MINI_PROGRAM_APPID_METADATA = 'wechat_mini_program_appid';
