/**
 * Which browser a login starts in, from its User-Agent (wechat-api.md §3: WeChat's in-app browser is
 * recognised by the case-insensitive substring "MicroMessenger", as WeChat's own authorize page does).
 *
 * - `wechat`: WeChat's browser on a phone. Official Account web authorization works here.
 * - `wechat_desktop`: WeChat for Windows or Mac (WindowsWechat / MacWechat next to MicroMessenger).
 *   It sends MicroMessenger too, so WeChat's authorize page accepts it, and the person is logged in
 *   to WeChat on that computer: it takes the Official Account route like the phone.
 * - `mini_program`: a mini program's web-view (miniProgram next to MicroMessenger). Still WeChat's
 *   browser, so the Official Account route works and gives the same unionid as the mini program
 *   (both bound to the Open Platform account). A mini program's own login is the token exchange,
 *   not this page.
 * - `wecom`: WeCom (企业微信, wxwork in the UA) on a computer. Its UA also contains MicroMessenger, but
 *   WeChat answers Official Account authorization there with "请在微信客户端打开链接": it gets the QR
 *   page (scan with WeChat) instead, never the Official Account route.
 * - `wecom_phone`: WeCom on a phone or tablet (wxwork next to Mobile, Android, iPhone or iPad). Refused
 *   by the Official Account as on a computer, and, like any phone, it cannot scan its own screen: the
 *   page says to open it in WeChat or on a computer instead.
 * - `phone`: another browser on a phone or tablet (Mobile, Android, iPhone or iPad in the UA): the
 *   QR page, though the phone cannot scan its own screen, so the page says what to do instead.
 * - `other`: any other browser: the QR page.
 */
export type BrowserKind =
  | 'wechat'
  | 'wechat_desktop'
  | 'mini_program'
  | 'wecom'
  | 'wecom_phone'
  | 'phone'
  | 'other';

const PHONE = /mobile|android|iphone|ipad/;

export function browserKind(userAgent: string | undefined): BrowserKind {
  const ua = (userAgent ?? '').toLowerCase();
  if (ua.includes('wxwork')) return PHONE.test(ua) ? 'wecom_phone' : 'wecom';
  if (!ua.includes('micromessenger')) return PHONE.test(ua) ? 'phone' : 'other';
  if (ua.includes('miniprogram')) return 'mini_program';
  if (ua.includes('windowswechat') || ua.includes('macwechat')) return 'wechat_desktop';
  return 'wechat';
}

/** A phone's or tablet's browser, whose own screen shows the QR code: it cannot scan it. */
export function onPhone(kind: BrowserKind): boolean {
  return kind === 'phone' || kind === 'wecom_phone';
}

/** Browsers where WeChat's Official Account authorization works. */
export function canUseOfficialAccount(kind: BrowserKind): boolean {
  return kind === 'wechat' || kind === 'wechat_desktop' || kind === 'mini_program';
}
