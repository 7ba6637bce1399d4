import { request as undiciRequest } from 'undici';

/**
 * A browserless client with cookies, for flow tests: it makes every request a browser would make,
 * keeps cookies per host with their paths, and follows redirects one at a time so tests can stop at
 * the relying party's redirect_uri.
 */
export interface Hop {
  url: string;
  status: number;
  location: string | undefined;
  body: string;
  headers: Headers;
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
  host: string;
}

/** What a browser sends with a top-level navigation (a link, a redirect, a form), besides cookies. */
const NAVIGATION_HEADERS = {
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'upgrade-insecure-requests': '1',
};

export class TestBrowser {
  readonly #cookies = new Map<string, StoredCookie>();
  readonly userAgent: string;
  readonly #navigation: boolean;

  /**
   * `navigation: true` sends every request as a browser's top-level navigation does (Accept: text/html,
   * Sec-Fetch-Mode: navigate, Sec-Fetch-Dest: document). fetch() always says Sec-Fetch-Mode: cors,
   * which relying parties such as mod_auth_openidc take for a script's request and answer 401 instead
   * of sending the person to the provider; so these requests go through undici's request() instead.
   */
  constructor(options: { userAgent?: string; navigation?: boolean } = {}) {
    this.userAgent =
      options.userAgent ??
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36';
    this.#navigation = options.navigation ?? false;
  }

  /**
   * One request, no redirect following. `keepCookies: false` drops the answer's cookies, as a browser
   * does whose answer never arrived (the instance died before it was sent).
   */
  async request(
    url: string,
    init: {
      method?: string;
      form?: Record<string, string>;
      headers?: Record<string, string>;
      keepCookies?: boolean;
    } = {},
  ): Promise<Hop> {
    const target = new URL(url);
    const headers: Record<string, string> = {
      'user-agent': this.userAgent,
      'accept-language': 'zh-CN,zh;q=0.9',
      ...(this.#navigation ? NAVIGATION_HEADERS : {}),
      ...init.headers,
    };
    const cookie = this.cookieHeader(target);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const method = init.method ?? (body ? 'POST' : 'GET');
    // A page that never arrives is reloaded by a person, not waited on for minutes.
    const signal = AbortSignal.timeout(30_000);
    const response = this.#navigation
      ? await navigate(target, { method, headers, body, signal })
      : await fetch(target, { method, headers, body, redirect: 'manual', signal });
    if (init.keepCookies !== false)
      for (const line of response.headers.getSetCookie()) this.store(target, line);
    const location = response.headers.get('location') ?? undefined;
    return {
      url: target.href,
      status: response.status,
      location: location ? new URL(location, target).href : undefined,
      body: await response.text(),
      headers: response.headers,
    };
  }

  /**
   * Follows redirects from `url` until a response is not a redirect, or the next location starts
   * with `stopAt` (the relying party's redirect_uri, which the test hands to openid-client).
   */
  async follow(
    url: string,
    options: { stopAt?: string; method?: string; form?: Record<string, string> } = {},
  ): Promise<Hop> {
    let hop = await this.request(url, { method: options.method, form: options.form });
    for (let i = 0; i < 20; i++) {
      if (!hop.location || hop.status < 300 || hop.status >= 400) return hop;
      if (options.stopAt && hop.location.startsWith(options.stopAt)) return hop;
      hop = await this.request(hop.location);
    }
    throw new Error('too many redirects');
  }

  cookieNames(): string[] {
    return [...this.#cookies.values()].map((c) => c.name);
  }

  /** Every cookie held, by name and value (for secret-leak checks). */
  cookies(): Array<{ name: string; value: string }> {
    return [...this.#cookies.values()].map(({ name, value }) => ({ name, value }));
  }

  private cookieHeader(url: URL): string {
    return [...this.#cookies.values()]
      .filter((c) => c.host === url.hostname && url.pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  private store(url: URL, line: string): void {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = '/';
    let expired = false;
    for (const attribute of attributes) {
      const [k = '', v = ''] = attribute.trim().split('=');
      if (k.toLowerCase() === 'path') path = v;
      if (k.toLowerCase() === 'expires' && new Date(v).getTime() < Date.now()) expired = true;
      if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
    }
    const key = `${url.hostname} ${path} ${name}`;
    if (expired || value === '') this.#cookies.delete(key);
    else this.#cookies.set(key, { name, value, path, host: url.hostname });
  }
}

/** One request through undici's request(), which adds no fetch metadata; answered like fetch's. */
async function navigate(
  target: URL,
  init: { method: string; headers: Record<string, string>; body: string | undefined; signal: AbortSignal },
): Promise<{ status: number; headers: Headers; text(): Promise<string> }> {
  const answer = await undiciRequest(target, init);
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return { status: answer.statusCode, headers, text: () => answer.body.text() };
}

/** The value of an attribute of the first element matching `selector`-like id in an HTML page. */
export function attributeOf(html: string, id: string, attribute: string): string | undefined {
  const tag = html.match(new RegExp(`<[^>]*id="${id}"[^>]*>`))?.[0];
  const raw = tag?.match(new RegExp(`${attribute}="([^"]*)"`))?.[1];
  return raw === undefined ? undefined : decodeEntities(raw);
}

export function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCodePoint(Number.parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * User-Agents as the browsers send them (captured forms): WeChat's in-app browser on phones and
 * desktops, a mini program's web-view, WeCom (which also says MicroMessenger), and plain browsers.
 */
export const USER_AGENTS = {
  desktop:
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36',
  mobileSafari:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  wechatIos:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) NetType/WIFI Language/zh_CN',
  wechatAndroid:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.188 Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240801 MMWEBID/1234 MicroMessenger/8.0.51.2720(0x28003337) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64',
  windowsWechat:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090c11) XWEB/11275 Flue',
  macWechat:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.8(0x13080810) XWEB/1227 Flue',
  miniProgram:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323a) NetType/WIFI Language/zh_CN miniProgram/wx0123456789abcdef',
  wecom:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.26 MicroMessenger/7.0.1 Language/zh ColorScheme/Light',
  wecomDesktop:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0.4430.212 Safari/537.36 wxwork/4.1.20 (MicroMessenger/6.2) WindowsWechat',
} as const;
