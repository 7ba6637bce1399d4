/**
 * Every sentence a person reads on our pages, in Chinese and English.
 * Keys are grouped by page; `{name}` placeholders are filled by `t()` and escaped by the templates.
 * `{wechatButton}` is left for the error page, which puts in WeChat's own button label marked as
 * Chinese (views/error.eta), so that a screen reader reading an English page says it in Chinese.
 */
export const LANGS = ['zh-CN', 'en'] as const;
export type Lang = (typeof LANGS)[number];

const zh = {
  'app.title': '微信登录',
  'common.tryAgain': '重新登录',
  'common.backToApp': '返回应用',
  'common.cancel': '取消',
  'demo.title': '演示应用',
  'demo.lead': '通过本服务以 OpenID Connect（授权码 + PKCE）登录的示例应用。',
  'demo.login': '使用微信登录',
  'demo.logout': '退出登录',
  'demo.claims': 'ID 令牌中的声明',
  'demo.userinfo': 'UserInfo 接口返回的信息',
  'demo.cancelled': '你已取消登录。',
  'demo.failed': '登录未完成。',
  'demo.noLogin': '没有进行中的登录，请重新开始。',
  'login.title': '使用微信登录',
  'login.subtitle': '继续使用“{client}”',
  'login.scan': '请使用微信扫描二维码登录',
  'login.fallback': '二维码无法显示？直接打开微信登录页面',
  'login.notConfigured': '此服务尚未配置微信网站应用，暂时无法扫码登录。请联系网站管理员。',
  'login.openInWeChat': '请在微信中打开此页面登录。',
  'login.phoneOpenInWeChat': '请在微信中打开此页面登录，或在电脑上打开此页面，用手机微信扫描二维码。',
  'login.wecomScan': '企业微信中无法使用微信授权登录。请用手机微信扫描下方二维码，或在微信中打开此页面。',
  'login.wecomPhone':
    '企业微信中无法使用微信授权登录。请在微信中打开此页面，或在电脑浏览器中打开后用手机微信扫码。',
  'login.scanOnComputer': '此服务暂不支持在微信内直接登录。请在电脑浏览器中打开此页面，用微信扫码登录。',
  'login.phoneUseComputer':
    '手机无法扫描自己屏幕上的二维码。请在电脑浏览器中打开此页面，用手机微信扫码登录。',
  'authorize.why': '“{client}”将通过微信获取你的昵称和头像，用于识别你的身份并完成登录。',
  'authorize.button': '微信授权登录',
  'authorize.allowButton': '同意并用微信登录',
  'authorize.consent':
    '点击下方按钮即表示你同意“{client}”获取这些信息，你的选择会被记住。你可以随时在账号管理页取消授权。',
  'callback.duplicateTitle': '微信登录',
  'callback.duplicate': '此次登录已在处理中，无需重复操作。',
  'consent.title': '授权确认',
  'consent.lead': '“{client}”申请获取以下信息：',
  'consent.allow': '允许',
  'consent.deny': '拒绝',
  'consent.signedInAs': '当前账号：{name}',
  'consent.remembered':
    '你的选择会被记住：此应用以后请求同样的信息时不再询问，除非它要求你重新确认。你可以随时在账号管理页取消授权。',
  'scope.openid': '你的账号标识',
  'scope.profile': '你的昵称和头像',
  'scope.offline_access': '在你离线时继续访问以上信息',
  'scope.wechat': '你在各微信公众号、小程序中的用户标识（用于给你发送微信消息）',
  'scope.phone': '你的手机号',
  'scopeShort.openid': '账号标识',
  'scopeShort.profile': '昵称和头像',
  'scopeShort.offline_access': '离线时继续访问',
  'scopeShort.wechat': '微信用户标识',
  'scopeShort.phone': '手机号',
  'error.title': '登录未完成',
  'error.pageTitle': '出错了',
  'error.logoutTitle': '退出未完成',
  'error.notFoundTitle': '页面不存在',
  'error.notFound': '此页面不存在。请检查网址，或返回应用。',
  'error.notFoundAccount': '此页面不存在。请检查网址，或返回账号管理。',
  'error.methodNotAllowedTitle': '此页面不能直接打开',
  'error.methodNotAllowed': '此地址只接受应用或页面表单发来的请求，不能作为链接打开。请返回应用。',
  'error.generic': '出了点问题，请稍后重试。',
  'error.badRequest': '无法处理此请求，请返回上一页重试。',
  'error.declined': '你已拒绝微信授权。',
  'error.expired': '登录已超时或页面已失效，请返回应用重新登录。',
  'error.expiredRestart': '登录已超时。你可以重新开始登录。',
  'error.restart': '重新登录',
  'error.stateInvalid': '此登录链接已失效或已被使用，请重新登录。',
  'error.codeInvalid': '微信授权码无效或已过期，请重新登录。',
  'error.unavailable': '微信服务暂时不可用，请稍后重试。',
  'error.rateLimited': '请求过于频繁，请稍后重试。',
  'error.serviceUnavailable': '登录服务暂时不可用，请稍后重试。',
  'error.unionidMissing': '此微信应用未绑定微信开放平台账号，无法识别你的身份。请联系网站管理员。',
  'error.appConfig': '此服务的微信应用配置有误，请联系网站管理员。',
  'error.blocked': '微信出于账号安全原因拒绝了此次登录，请稍后重试。',
  'error.snapshotUser': '当前为微信快照页，无法登录。请点击页面下方的“{wechatButton}”后重试。',
  'error.otherPerson': '你登录的微信账号不是应用要求的账号。请用该账号重试，或返回应用。',
  'error.identityConflict':
    '你的账号暂时无法登录，需要网站管理员处理。请联系网站管理员，并提供下方的错误编号。',
  'error.forApplications': '这个地址供应用程序调用，不是在浏览器中打开的网页。请返回应用继续。',
  'error.oauth':
    '应用发来的登录请求有误，无法继续登录。请返回应用重试；问题仍在时，请把下方的技术信息和错误编号告诉应用的开发者。',
  'error.logoutRequest':
    '应用发来的退出请求有误，无法继续。请返回应用；问题仍在时，请把下方的技术信息和错误编号告诉应用的开发者。',
  'error.logoutAnyway': '仍然退出此浏览器上的微信登录',
  'error.technical': '技术信息（供应用开发者参考）',
  'error.reference': '错误编号：{id}',
  'logout.title': '退出登录',
  'logout.asking': '“{client}”请你退出登录。',
  'logout.question': '是否同时退出此浏览器上用微信登录的其他应用？',
  'logout.questionAll': '要退出此浏览器上用微信登录的所有应用吗？',
  'logout.yes': '全部退出',
  'logout.no': '只退出“{client}”',
  'logout.onlyHint':
    '只退出“{client}”时，此浏览器仍保持微信登录：再次登录无需扫码。在公用电脑上，请全部退出。',
  'logout.done': '你已退出登录。现在可以关闭此页面。',
  'logout.doneOnly': '你已退出“{client}”。此浏览器仍保持微信登录：“{client}”和其他应用可以不扫码再次登录。',
  'logout.account': '管理我的账号',
  'formPost.title': '正在继续…',
  'formPost.noscript': '此浏览器未启用 JavaScript，页面无法自动继续。请点击“继续”。',
  'formPost.continue': '继续',
  'account.title': '账号管理',
  'account.clientName': '账号管理',
  'account.profile': '个人资料',
  'account.nickname': '昵称',
  'account.noNickname': '（未设置昵称）',
  'account.linkedApps': '已绑定的微信应用',
  'account.kind.website': '网站应用',
  'account.kind.officialAccount': '公众号',
  'account.kind.miniProgram': '小程序',
  'account.unbind': '解除绑定',
  'account.unbindNamed': '解除绑定“{app}”',
  'account.unbindTitle': '解除绑定微信应用',
  'account.unbindQuestion': '确定要解除绑定“{app}”（{kind}）吗？',
  'account.unbindConfirm': '确认解除绑定',
  'account.unbound': '已解除绑定“{app}”。',
  'account.unbindNeedsPhone':
    '这是你的账号唯一绑定的微信应用，暂时不能解除绑定（解除后账号将无法找回）。请先在小程序“{miniProgram}”中绑定手机号，或注销账号。',
  'account.unbindNotPossible':
    '这是你的账号唯一绑定的微信应用，不能解除绑定（解除后账号将无法找回）。如果不再使用此账号，可以注销账号。',
  'account.unbindLastRecoverable':
    '这是你的账号唯一绑定的微信应用。解除绑定后，你有 {days} 天时间找回账号：用新的微信登录小程序，并在首次登录后 {minutes} 分钟内在小程序中验证同一个手机号。超过 {days} 天，账号将无法再找回。',
  'account.waitingForRecovery':
    '你的账号已不再绑定任何微信。请在解除绑定后 {days} 天内找回账号：用新的微信登录小程序，并在首次登录后 {minutes} 分钟内在小程序中验证同一个手机号。超过 {days} 天，账号将无法再找回。',
  'account.phone': '已验证的手机号',
  'account.noPhone': '未绑定手机号',
  'account.authorizedApps': '已授权的应用',
  'account.noApps': '暂无已授权的应用',
  'account.revoke': '取消授权',
  'account.revokeNamed': '取消授权“{client}”',
  'account.revoked': '已取消“{client}”的授权。',
  'account.logOut': '退出登录',
  'account.signOutEverywhere': '在所有设备上退出登录',
  'account.signedOutEverywhere': '你已在所有设备和应用上退出登录。',
  'account.delete': '注销账号',
  'account.deleteWarning':
    '注销后，你的资料、头像、微信绑定和手机号将被永久删除，所有应用的登录将失效。此操作无法撤销。',
  'account.deleteConfirm': '我已了解注销后账号无法恢复',
  'account.deleteFinal': '确认注销',
  'account.deletedTitle': '账号已注销',
  'account.deleted': '你的账号已注销，所有数据已删除。现在可以关闭此页面。',
  'account.notFound': '该内容不存在或已被删除。',
  'account.formExpired': '页面已过期，请返回账号管理页重试。',
  'account.loginFailed': '登录未完成，请重试。',
  'account.loginCancelled': '你已取消登录。',
  'account.loginDeclined': '你已在微信中拒绝授权，未登录。',
  'account.logInAgain': '重新登录',
  'account.backToAccount': '返回账号管理',
  'account.deleteWho': '要注销的账号：{name}',
  'account.loginAgain.title': '请重新登录',
  'account.loginAgain.whyUnbind': '解除绑定微信前，请再用微信登录一次，确认是你本人。',
  'account.loginAgain.whyDelete': '注销账号前，请再用微信登录一次，确认是你本人。',
  'account.loginAgain.rule':
    '为防止他人利用你在共用电脑等设备上未退出的登录进行操作，解除绑定和注销账号只能在登录后{window}内进行。你上次登录已超过这个时间。',
  'account.loginAgain.afterUnbind': '登录后将回到账号管理页，请再次点击“解除绑定”。',
  'account.loginAgain.afterDelete': '登录后将回到注销确认页。',
  'account.loginAgain.button': '用微信重新登录',
  'account.loginAgain.minutes': ' {n} 分钟',
  'account.loginAgain.seconds': ' {n} 秒',
  'lang.switch': 'English',
} as const;

export type MessageKey = keyof typeof zh;

const en: Record<MessageKey, string> = {
  'app.title': 'Log in with WeChat',
  'common.tryAgain': 'Try again',
  'common.backToApp': 'Return to the application',
  'common.cancel': 'Cancel',
  'demo.title': 'Demo app',
  'demo.lead': 'A relying party that logs in through this provider with OpenID Connect (code + PKCE).',
  'demo.login': 'Log in with WeChat',
  'demo.logout': 'Log out',
  'demo.claims': 'ID token claims',
  'demo.userinfo': 'UserInfo',
  'demo.cancelled': 'You cancelled the login.',
  'demo.failed': 'The login did not complete.',
  'demo.noLogin': 'No login is in progress: start again.',
  'login.title': 'Log in with WeChat',
  'login.subtitle': 'to continue to {client}',
  'login.scan': 'Scan the QR code with WeChat to log in',
  'login.fallback': 'QR code not showing? Open the WeChat login page directly',
  'login.notConfigured':
    'This service has no WeChat website app configured, so QR login is not available. Please contact the site administrator.',
  'login.openInWeChat': 'Please open this page in WeChat to log in.',
  'login.phoneOpenInWeChat':
    'Please open this page in WeChat to log in, or open it on a computer and scan the QR code with WeChat on your phone.',
  'login.wecomScan':
    'WeChat authorization is not available in WeCom. Scan the QR code below with WeChat on your phone, or open this page in WeChat.',
  'login.wecomPhone':
    'WeChat authorization is not available in WeCom. Open this page in WeChat, or open it in a browser on a computer and scan the QR code with WeChat on your phone.',
  'login.scanOnComputer':
    'Logging in directly inside WeChat is not available for this service. Open this page in a browser on a computer and scan the QR code with WeChat.',
  'login.phoneUseComputer':
    'A phone cannot scan the QR code on its own screen. Open this page in a browser on a computer and scan the code with WeChat on your phone.',
  'authorize.why': '{client} will receive your WeChat nickname and avatar, to recognize you and log you in.',
  'authorize.button': 'Log in with WeChat',
  'authorize.allowButton': 'Allow and log in with WeChat',
  'authorize.consent':
    'By pressing the button below you allow {client} this, and your choice is remembered. You can revoke its access at any time on your account page.',
  'callback.duplicateTitle': 'WeChat login',
  'callback.duplicate': 'This login is already being completed. There is nothing more to do here.',
  'consent.title': 'Authorize',
  'consent.lead': '{client} is asking for:',
  'consent.allow': 'Allow',
  'consent.deny': 'Deny',
  'consent.signedInAs': 'Logged in as {name}',
  'consent.remembered':
    'Your choice is remembered: this application will not ask again for the same information unless it asks you to confirm. You can revoke its access at any time on your account page.',
  'scope.openid': 'Your account identifier',
  'scope.profile': 'Your nickname and avatar',
  'scope.offline_access': 'Access to the above while you are offline',
  'scope.wechat':
    'Your user IDs in our WeChat official accounts and mini programs (to send you WeChat messages)',
  'scope.phone': 'Your phone number',
  'scopeShort.openid': 'account ID',
  'scopeShort.profile': 'nickname and avatar',
  'scopeShort.offline_access': 'access while you are offline',
  'scopeShort.wechat': 'WeChat user IDs',
  'scopeShort.phone': 'phone number',
  'error.title': 'Login not completed',
  'error.pageTitle': 'Something went wrong',
  'error.logoutTitle': 'Logout not completed',
  'error.notFoundTitle': 'Page not found',
  'error.notFound': 'This page does not exist. Check the address, or return to the application.',
  'error.notFoundAccount': 'This page does not exist. Check the address, or go back to Account management.',
  'error.methodNotAllowedTitle': 'This page cannot be opened directly',
  'error.methodNotAllowed':
    'This address only takes requests sent by an application or by a form on a page, not a link. Return to the application.',
  'error.generic': 'Something went wrong. Please try again later.',
  'error.badRequest': 'This request could not be processed. Please go back and try again.',
  'error.declined': 'You declined the WeChat authorization.',
  'error.expired':
    'This login has timed out or the page is no longer valid. Please go back to the application and log in again.',
  'error.expiredRestart': 'This login has timed out. You can start it again.',
  'error.restart': 'Log in again',
  'error.stateInvalid': 'This login link has expired or was already used. Please log in again.',
  'error.codeInvalid': 'The WeChat authorization code is invalid or has expired. Please log in again.',
  'error.unavailable': 'WeChat is not responding right now. Please try again in a moment.',
  'error.rateLimited': 'Too many requests. Please try again in a moment.',
  'error.serviceUnavailable': 'The login service is temporarily unavailable. Please try again in a moment.',
  'error.unionidMissing':
    'This WeChat app is not bound to a WeChat Open Platform account, so we cannot tell who you are. Please contact the site administrator.',
  'error.appConfig': "This service's WeChat app is misconfigured. Please contact the site administrator.",
  'error.blocked': 'WeChat refused this login for account security reasons. Please try again later.',
  'error.snapshotUser':
    'This is a WeChat snapshot page, where login is not possible. Tap “{wechatButton}” (Use full service) at the bottom of the page and try again.',
  'error.otherPerson':
    'The WeChat account you logged in with is not the one the application asked for. Try again with that account, or return to the application.',
  'error.identityConflict':
    'Your account cannot be logged in to right now: the site administrator needs to look at it. Please contact them with the error reference below.',
  'error.forApplications':
    'This address is for applications to call, not a page to open in a browser. Return to the application to go on.',
  'error.oauth':
    "The application's login request is invalid, so the login cannot go on. Return to the application and try again; if it keeps happening, give its developers the technical details and the error reference below.",
  'error.logoutRequest':
    "The application's logout request is invalid, so it cannot go on. Return to the application; if it keeps happening, give its developers the technical details and the error reference below.",
  'error.logoutAnyway': 'Log out of WeChat login in this browser anyway',
  'error.technical': "Technical details (for the application's developers)",
  'error.reference': 'Error reference: {id}',
  'logout.title': 'Log out',
  'logout.asking': '{client} asks you to log out.',
  'logout.question': 'Also log out of the other applications you signed in to with WeChat in this browser?',
  'logout.questionAll': 'Log out of all the applications you signed in to with WeChat in this browser?',
  'logout.yes': 'Log out of all applications',
  'logout.no': 'Log out of {client} only',
  'logout.onlyHint':
    'Logging out of {client} only keeps this browser signed in with WeChat: logging in again needs no new scan. On a shared computer, log out of all applications.',
  'logout.done': 'You have been logged out. You can close this page now.',
  'logout.doneOnly':
    'You have logged out of {client}. This browser stays signed in with WeChat: {client} and the other applications can log you in again without a new scan.',
  'logout.account': 'Manage my account',
  'formPost.title': 'Continuing…',
  'formPost.noscript':
    'JavaScript is off in this browser, so the page cannot go on by itself. Press Continue.',
  'formPost.continue': 'Continue',
  'account.title': 'Account management',
  'account.clientName': 'Account management',
  'account.profile': 'Profile',
  'account.nickname': 'Nickname',
  'account.noNickname': '(no nickname)',
  'account.linkedApps': 'Linked WeChat apps',
  'account.kind.website': 'Website app',
  'account.kind.officialAccount': 'Official Account',
  'account.kind.miniProgram': 'Mini Program',
  'account.unbind': 'Unbind',
  'account.unbindNamed': 'Unbind {app}',
  'account.unbindTitle': 'Unbind a WeChat app',
  'account.unbindQuestion': 'Unbind {app} ({kind}) from your account?',
  'account.unbindConfirm': 'Confirm unbinding',
  'account.unbound': '{app} has been unbound from your account.',
  'account.unbindNeedsPhone':
    'This is the only WeChat app linked to your account, so it cannot be unbound for now (the account could not be recovered afterwards). Bind a phone number in the {miniProgram} Mini Program first, or delete the account.',
  'account.unbindNotPossible':
    'This is the only WeChat app linked to your account, so it cannot be unbound (the account could not be recovered afterwards). If you no longer use the account, you can delete it.',
  'account.unbindLastRecoverable':
    'This is the only WeChat app linked to your account. Once you unbind it, you have {days} days to get the account back: log in to the Mini Program with your new WeChat and, within {minutes} minutes of that first login, verify the same phone number there. After {days} days the account can no longer be recovered.',
  'account.waitingForRecovery':
    'No WeChat is linked to your account any more. To get it back, within {days} days of unbinding, log in to the Mini Program with your new WeChat and, within {minutes} minutes of that first login, verify the same phone number there. After {days} days the account can no longer be recovered.',
  'account.phone': 'Verified phone number',
  'account.noPhone': 'No phone number bound',
  'account.authorizedApps': 'Applications you have authorized',
  'account.noApps': 'No authorized applications yet',
  'account.revoke': 'Revoke',
  'account.revokeNamed': 'Revoke {client}',
  'account.revoked': 'Access revoked for {client}.',
  'account.logOut': 'Log out',
  'account.signOutEverywhere': 'Log out everywhere',
  'account.signedOutEverywhere': 'You have been logged out of every device and application.',
  'account.delete': 'Delete account',
  'account.deleteWarning':
    'Deleting erases your profile, avatar, WeChat links and phone number for good, and signs you out of every application. This cannot be undone.',
  'account.deleteConfirm': 'I understand my account cannot be recovered',
  'account.deleteFinal': 'Confirm deletion',
  'account.deletedTitle': 'Account deleted',
  'account.deleted': 'Your account has been deleted, with all its data. You can close this page now.',
  'account.notFound': 'This item does not exist or has already been removed.',
  'account.formExpired': 'This page has expired. Go back to your account page and try again.',
  'account.loginFailed': 'The login did not complete. Please try again.',
  'account.loginCancelled': 'You cancelled the login.',
  'account.loginDeclined': 'You declined in WeChat, so you are not logged in.',
  'account.logInAgain': 'Log in again',
  'account.backToAccount': 'Back to Account management',
  'account.deleteWho': 'Account to delete: {name}',
  'account.loginAgain.title': 'Log in again to continue',
  'account.loginAgain.whyUnbind':
    'Before you unbind a WeChat app, log in with WeChat once more to confirm it is you.',
  'account.loginAgain.whyDelete':
    'Before you delete your account, log in with WeChat once more to confirm it is you.',
  'account.loginAgain.rule':
    'So that nobody can use a login left open on a shared computer or another device, unbinding and deleting are possible only within {window} of logging in. Your last login was longer ago than that.',
  'account.loginAgain.afterUnbind': 'You will come back to your account page. Choose Unbind there again.',
  'account.loginAgain.afterDelete': 'You will come back to the deletion confirmation page.',
  'account.loginAgain.button': 'Log in with WeChat again',
  'account.loginAgain.minutes': '{n} minutes',
  'account.loginAgain.seconds': '{n} seconds',
  'lang.switch': '中文',
};

const CATALOGS: Record<Lang, Record<MessageKey, string>> = { 'zh-CN': zh, en };

export type Translate = (key: MessageKey, params?: Record<string, string>) => string;

export function translator(lang: Lang): Translate {
  const catalog = CATALOGS[lang];
  return (key, params) =>
    params
      ? catalog[key].replace(/\{(\w+)\}/g, (whole, name: string) => params[name] ?? whole)
      : catalog[key];
}

/**
 * Picks the page language: an explicit choice (?lang= or the OIDC ui_locales) wins, then
 * Accept-Language; Chinese is the default because most people reaching a WeChat login read it.
 */
export function pickLang(explicit: string | undefined, acceptLanguage: string | undefined): Lang {
  for (const candidate of [explicit, acceptLanguage]) {
    if (!candidate) continue;
    const lang = firstSupported(candidate);
    if (lang) return lang;
  }
  return 'zh-CN';
}

function firstSupported(header: string): Lang | undefined {
  const ranked = header
    .split(/[,\s]+/)
    .map((part) => {
      const [tag = '', ...params] = part.split(';');
      const q = params.find((p) => p.trim().startsWith('q='));
      return { tag: tag.trim().toLowerCase(), q: q ? Number(q.trim().slice(2)) : 1 };
    })
    .filter((entry) => entry.tag && entry.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { tag } of ranked) {
    if (tag.startsWith('zh')) return 'zh-CN';
    if (tag.startsWith('en')) return 'en';
  }
  return undefined;
}

export function isMessageKey(key: string): key is MessageKey {
  return Object.hasOwn(zh, key);
}

/**
 * Scopes in the order a page lists them: offline_access last, since its words ("keep accessing the
 * above information while you are offline") refer to the others. Otherwise as requested.
 */
export function inReadingOrder(scopes: readonly string[]): string[] {
  return [
    ...scopes.filter((scope) => scope !== 'offline_access'),
    ...scopes.filter((scope) => scope === 'offline_access'),
  ];
}

/** What a scope lets a client see, in the page's language (the scope itself when we have no words for it). */
export function scopeLabel(t: Translate, scope: string): string {
  const key = `scope.${scope}`;
  return isMessageKey(key) ? t(key) : scope;
}

/**
 * The same in a few words, for a list joined in one line (the account page's "what it may see"):
 * the consent page's labels are sentences of their own ("Your account identifier"), which read as
 * fragments once joined with commas.
 */
export function scopeShortLabel(t: Translate, scope: string): string {
  const key = `scopeShort.${scope}`;
  return isMessageKey(key) ? t(key) : scope;
}
