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

export class TestBrowser {
  readonly #cookies = new Map<string, StoredCookie>();
  readonly userAgent: string;

  constructor(options: { userAgent?: string } = {}) {
    this.userAgent =
      options.userAgent ??
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36';
  }

  /** One request, no redirect following. */
  async request(
    url: string,
    init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {},
  ): Promise<Hop> {
    const target = new URL(url);
    const headers: Record<string, string> = {
      'user-agent': this.userAgent,
      'accept-language': 'zh-CN,zh;q=0.9',
      ...init.headers,
    };
    const cookie = this.cookieHeader(target);
    if (cookie) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const response = await fetch(target, {
      method: init.method ?? (body ? 'POST' : 'GET'),
      headers,
      body,
      redirect: 'manual',
    });
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
