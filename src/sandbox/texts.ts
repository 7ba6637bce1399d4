import type { LoginRequestProblem, PageLang } from './login-request.ts';

const cn = {
  htmlLang: 'zh-CN',
  title: '微信登录',
  sandbox: '沙箱环境 · 这不是真实的微信',
  scanHint: '使用微信扫一扫登录',
  appLine: '「{app}」',
  pickUser: '以此沙箱用户身份扫码：',
  newUser: '或新建用户：',
  nicknamePlaceholder: '昵称（支持中文和表情）',
  allow: '扫码并允许',
  deny: '拒绝',
  phoneLink: '在手机页面扫码',
  scanned: '扫描成功，请在手机上确认登录',
  expired: '二维码已失效',
  refresh: '刷新',
  qrAlt: '二维码',
  errorTitle: '出错了',
  'problem.appid': 'AppID 参数错误',
  'problem.redirect_uri': 'redirect_uri 参数错误',
  'problem.scope': 'Scope 参数错误或没有 Scope 权限',
  declinedTitle: '你已拒绝此次登录',
  declinedBody: '你可以关闭此页面。',
  invalidChoice: '无法完成登录',
  chooseUser: '请选择一个沙箱用户，或输入昵称新建用户。',
  back: '返回',
  scanTitle: '确认登录',
  scanLead: '「{app}」申请使用你的微信身份登录',
  scanDone: '已完成，请回到电脑上继续。',
  scanDeclined: '你已拒绝此次登录。',
  openInWeChat: '请在微信客户端打开链接',
  oaTitle: '微信网页授权',
  oaWhoLead: '此浏览器中登录微信的是哪位沙箱用户？之后的静默授权（snsapi_base）都会使用此用户。',
  oaUserinfoLead: '「{app}」申请获得你的昵称、头像',
  oaContinue: '继续',
  oaAllow: '允许',
  oaDeny: '拒绝',
  snapshotBanner: '当前为快照页：此处授权得到的是虚拟身份。',
  snapshotTag: '快照页',
  fullService: '使用完整服务',
  errorCode: '错误码：{code}',
  'oaProblem.10003': 'redirect_uri域名与后台配置不一致',
  'oaProblem.10005': '此公众号并没有这些scope的权限',
  'oaProblem.10010': 'scope不能为空',
  'oaProblem.10011': 'redirect_uri不能为空',
  'oaProblem.10012': 'appid不能为空',
  'oaProblem.10016': '不支持微信开放平台的Appid，请使用公众号Appid',
  'oaProblem.appid': 'AppID 参数错误',
} as const;

type Texts = { readonly [K in keyof typeof cn]: string };

const en: Texts = {
  htmlLang: 'en',
  title: 'WeChat Login',
  sandbox: 'Sandbox · this is not the real WeChat',
  scanHint: 'Scan with WeChat to log in',
  appLine: '“{app}”',
  pickUser: 'Scan as this sandbox user:',
  newUser: 'or create a user:',
  nicknamePlaceholder: 'Nickname (Chinese and emoji work)',
  allow: 'Scan and allow',
  deny: 'Decline',
  phoneLink: 'Scan on the phone page',
  scanned: 'Scanned. Confirm the login on the phone.',
  expired: 'QR code expired',
  refresh: 'Refresh',
  qrAlt: 'QR code',
  errorTitle: 'Error',
  'problem.appid': 'Invalid AppID',
  'problem.redirect_uri': 'Invalid redirect_uri',
  'problem.scope': 'Invalid scope or no permission for the scope',
  declinedTitle: 'You declined this login',
  declinedBody: 'You can close this page.',
  invalidChoice: 'The login could not be completed',
  chooseUser: 'Choose a sandbox user, or enter a nickname to create one.',
  back: 'Back',
  scanTitle: 'Confirm login',
  scanLead: '“{app}” asks to log you in with your WeChat identity',
  scanDone: 'Done. Continue on the computer.',
  scanDeclined: 'You declined this login.',
  openInWeChat: 'Please open this link in the WeChat app',
  oaTitle: 'WeChat web authorization',
  oaWhoLead:
    'Which sandbox user is logged in to WeChat in this browser? Silent authorizations (snsapi_base) use this user from now on.',
  oaUserinfoLead: '“{app}” asks for your nickname and avatar',
  oaContinue: 'Continue',
  oaAllow: 'Allow',
  oaDeny: 'Decline',
  snapshotBanner: 'Snapshot page: an authorization here gives a virtual identity.',
  snapshotTag: 'Snapshot page',
  fullService: 'Use full service',
  errorCode: 'Error code: {code}',
  'oaProblem.10003': 'The redirect_uri domain does not match the configured one',
  'oaProblem.10005': 'This Official Account has no permission for the scope',
  'oaProblem.10010': 'scope is empty',
  'oaProblem.10011': 'redirect_uri is empty',
  'oaProblem.10012': 'appid is empty',
  'oaProblem.10016': 'Open Platform AppIDs are not supported; use an Official Account AppID',
  'oaProblem.appid': 'Invalid AppID',
};

/** The WeChat page's words in its two languages (lang=cn default, lang=en). */
export function textsFor(lang: PageLang): Texts {
  return lang === 'en' ? en : cn;
}

export function problemText(lang: PageLang, problem: LoginRequestProblem): string {
  return textsFor(lang)[`problem.${problem}`];
}

/** Fills `{name}` placeholders; templates escape the result. */
export function fill(text: string, values: Record<string, string>): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => values[name] ?? whole);
}
