import * as oidc from 'openid-client';
import { type Bridge, RP } from './bridge.ts';
import { attributeOf, decodeEntities, type Hop, TestBrowser, USER_AGENTS } from './browser.ts';
import { type AuthorizationOptions, authorizationRequest, consentAction, type SandboxUser } from './flow.ts';

/** A trip the bridge made the browser take to the official account's authorize page. */
export interface OfficialAccountTrip {
  appid: string;
  scope: string;
  state: string;
  /** The whole authorize URL, as WeChat would open it again. */
  href: string;
}

export interface WeChatBrowserLogin {
  browser: TestBrowser;
  checks: Awaited<ReturnType<typeof authorizationRequest>>['checks'];
  /** Every connect/oauth2/authorize the bridge sent the browser to, in order. */
  trips: OfficialAccountTrip[];
  /** How many sandbox pages asked the person something (0: the login was silent). */
  sandboxPages: number;
  /** How many times our page before the profile request was shown (its button tapped). */
  authorizePages: number;
  /** How many of our consent pages were allowed on the way. */
  consentPages: number;
  /** The relying party's redirect_uri with code and state, when the login got there. */
  redirect: URL | undefined;
  /** Where following stopped: the RP redirect, or a page of the bridge (an error or a notice). */
  last: Hop;
}

export interface WeChatBrowserOptions extends AuthorizationOptions {
  browser?: TestBrowser;
  userAgent?: string;
  /** Who the person is on the sandbox's pages (default: whoever the page preselects). */
  user?: SandboxUser;
  /** Decline on the consent (snsapi_userinfo) page. */
  deny?: boolean;
}

/**
 * A login as a person in WeChat's browser: the relying party's authorization request, the bridge's
 * redirect to the official account, the sandbox's pages (picking `user`, allowing or declining),
 * the callback, our consent page (allowed), up to the relying party's redirect_uri or a page that
 * stops the login. Every request is one a browser would make.
 */
export async function loginInWeChat(
  rp: oidc.Configuration,
  options: WeChatBrowserOptions = {},
): Promise<WeChatBrowserLogin> {
  const browser =
    options.browser ?? new TestBrowser({ userAgent: options.userAgent ?? USER_AGENTS.wechatIos });
  const { url, checks } = await authorizationRequest(rp, options);
  return { ...(await followInWeChat(browser, url.href, options)), checks };
}

/**
 * From `href` on, what the person's WeChat browser does: every redirect, the sandbox's pages, our
 * consent page, up to the relying party's redirect_uri or a page that stops the login.
 */
export async function followInWeChat(
  browser: TestBrowser,
  href: string,
  options: Pick<WeChatBrowserOptions, 'user' | 'deny'> & {
    /** Stop on our page before the profile request instead of tapping its button. */
    stopAtAuthorizePage?: boolean;
  } = {},
): Promise<Omit<WeChatBrowserLogin, 'checks'>> {
  const trips: OfficialAccountTrip[] = [];
  let sandboxPages = 0;
  let authorizePages = 0;
  let consentPages = 0;
  let hop = await browser.request(href);
  if (new URL(href).pathname === '/connect/oauth2/authorize') trips.push(tripOf(new URL(href)));
  for (let i = 0; i < 40; i++) {
    if (hop.location?.startsWith(RP.redirect_uris[0] as string)) {
      const redirect = new URL(hop.location);
      return { browser, trips, sandboxPages, authorizePages, consentPages, redirect, last: hop };
    }
    if (hop.location) {
      const next = new URL(hop.location);
      if (next.pathname === '/connect/oauth2/authorize') trips.push(tripOf(next));
      hop = await browser.request(hop.location);
      continue;
    }
    if (hop.body.includes('action="/connect/sandbox/oauth2/authorize"')) {
      sandboxPages += 1;
      hop = await browser.request(new URL('/connect/sandbox/oauth2/authorize', hop.url).href, {
        form: sandboxDecision(hop.body, options),
      });
      continue;
    }
    // Our page before WeChat asks for the profile: the person taps its button.
    const authorize = attributeOf(hop.body, 'wechat-authorize', 'href');
    if (authorize && options.stopAtAuthorizePage) {
      return { browser, trips, sandboxPages, authorizePages, consentPages, redirect: undefined, last: hop };
    }
    if (authorize) {
      authorizePages += 1;
      trips.push(tripOf(new URL(authorize)));
      hop = await browser.request(authorize);
      continue;
    }
    const allow = consentAction(hop);
    if (allow) {
      consentPages += 1;
      hop = await browser.request(allow, { method: 'POST', form: {} });
      continue;
    }
    return { browser, trips, sandboxPages, authorizePages, consentPages, redirect: undefined, last: hop };
  }
  throw new Error('the WeChat login went round in circles');
}

/**
 * From `href` on, in WeChat's browser as `user`, up to our page before the profile request: the page,
 * and where its button leads (WeChat's snsapi_userinfo authorization).
 */
export async function toAuthorizePage(
  browser: TestBrowser,
  href: string,
  user: SandboxUser,
): Promise<{ page: Hop; authorize: string }> {
  const { last } = await followInWeChat(browser, href, { user, stopAtAuthorizePage: true });
  const authorize = attributeOf(last.body, 'wechat-authorize', 'href');
  if (!authorize)
    throw new Error(`not the page before the profile request: ${last.url} (status ${last.status})`);
  return { page: last, authorize };
}

/** A whole login in WeChat's browser, and the code exchanged by openid-client. */
export async function loginInWeChatAs(
  rp: oidc.Configuration,
  user: SandboxUser,
  options: Omit<WeChatBrowserOptions, 'user'> = {},
) {
  const login = await loginInWeChat(rp, { ...options, user });
  if (!login.redirect) {
    throw new Error(`stuck at ${login.last.url} (${login.last.status}): ${login.last.body.slice(0, 400)}`);
  }
  const tokens = await oidc.authorizationCodeGrant(rp, login.redirect, login.checks);
  return { login, tokens };
}

function tripOf(url: URL): OfficialAccountTrip {
  const q = url.searchParams;
  return {
    appid: q.get('appid') ?? '',
    scope: q.get('scope') ?? '',
    state: q.get('state') ?? '',
    href: url.href,
  };
}

function sandboxDecision(
  page: string,
  options: Pick<WeChatBrowserOptions, 'user' | 'deny'>,
): Record<string, string> {
  const form: Record<string, string> = {};
  for (const match of page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    form[match[1] as string] = decodeEntities(match[2] as string);
  }
  const checked = /name="user" value="([^"]+)" checked/.exec(page)?.[1];
  form.user = options.user?.id ?? checked ?? '';
  const canDeny = page.includes('id="oauth2-deny"');
  form.decision = options.deny && canDeny ? 'deny' : 'allow';
  return form;
}

/** Switches the sandbox's "deliver every callback twice" mode. */
export async function setDeliverTwice(bridge: Pick<Bridge, 'sandboxUrl'>, on: boolean): Promise<void> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/settings`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ deliverTwice: on }),
  });
  if (response.status !== 200) throw new Error(`settings: ${response.status}`);
}

/** Marks a sandbox user as being on (or off) WeChat's snapshot page. */
export async function setSnapshot(
  bridge: Pick<Bridge, 'sandboxUrl'>,
  user: SandboxUser,
  snapshot: boolean,
): Promise<void> {
  const response = await fetch(`${bridge.sandboxUrl}/sandbox/users/${user.id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ snapshot }),
  });
  if (response.status !== 200) throw new Error(`snapshot: ${response.status}`);
}
