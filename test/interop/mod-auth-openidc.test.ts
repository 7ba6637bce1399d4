import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, startBridge } from '../helpers/bridge.ts';
import { createSandboxUser, type SandboxUser } from '../helpers/flow.ts';
import {
  APACHE_MODULES,
  APACHE2,
  apacheInstalled,
  confirmLogout,
  finishLoginAtRp,
  freePort,
  interopAvailable,
  interopClient,
  navigatingBrowser,
  openToOthers,
  randomSecret,
  redact,
  startLoginAtRp,
  TestProcess,
  tempDir,
} from '../helpers/interop.ts';

const available = interopAvailable(
  'Apache httpd with mod_auth_openidc',
  apacheInstalled(),
  'apache2 libapache2-mod-auth-openidc',
);

/**
 * Debian's Apache httpd and mod_auth_openidc (2.4.12), configured with nothing but what a relying
 * party must say (mod-auth-openidc.conf), log a person in through the website QR login: the sandbox
 * plays WeChat, the browser is TestBrowser. By default mod_auth_openidc sends a nonce and no PKCE,
 * authenticates with client_secret_basic, checks the ID token and calls userinfo.
 */
describe.skipIf(!available)('Apache httpd + mod_auth_openidc (Debian) as a relying party', () => {
  const clientSecret = randomSecret();
  const passphrase = randomSecret();
  let port: number;
  let origin: string;
  let redirectUri: string;
  let loggedOutUrl: string;
  let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
  let bridge: Bridge | undefined;
  let apache: TestProcess | undefined;

  beforeAll(async () => {
    port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    redirectUri = `${origin}/protected/redirect_uri`;
    loggedOutUrl = `${origin}/logged-out.html`;
    const client = interopClient({
      client_id: 'apache-mod-auth-openidc',
      client_name: 'Apache mod_auth_openidc',
      client_secret: clientSecret,
      redirect_uri: redirectUri,
      post_logout_redirect_uri: loggedOutUrl,
    });
    bridge = await startBridge({
      storage: 'embedded',
      configure: (c) => ({ ...c, clients: [...c.clients, client] }),
    });

    dir = await tempDir('wob-apache-');
    // Apache reads its configuration as root and serves as www-data: the directory is opened to
    // others, the configuration (with the secrets) stays root's.
    await openToOthers(dir.path);
    const template = await readFile(new URL('./mod-auth-openidc.conf', import.meta.url), 'utf8');
    const values: Record<string, string> = {
      PORT: String(port),
      DIR: dir.path,
      MODULES: APACHE_MODULES,
      ISSUER: bridge.url,
      CLIENT_ID: client.client_id,
      CLIENT_SECRET: clientSecret,
      PASSPHRASE: passphrase,
    };
    const conf = template.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
      const value = values[name];
      if (value === undefined) throw new Error(`no value for {{${name}}}`);
      return value;
    });
    const confPath = join(dir.path, 'httpd.conf');
    await writeFile(confPath, conf, { mode: 0o600 });
    await writeFile(
      join(dir.path, 'whoami.cgi'),
      await readFile(new URL('./whoami.cgi', import.meta.url), 'utf8'),
      { mode: 0o755 },
    );
    await mkdir(join(dir.path, 'htdocs'), { mode: 0o755 });
    await writeFile(join(dir.path, 'htdocs', 'logged-out.html'), '<p>logged out of Apache</p>\n', {
      mode: 0o644,
    });

    apache = new TestProcess(APACHE2, APACHE2, ['-X', '-f', confPath], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
      secrets: [clientSecret, passphrase],
    });
    // Apache writes its pid file once its listening socket is bound.
    const pidFile = join(dir.path, 'httpd.pid');
    await apache.waitUntilListening(port, () => existsSync(pidFile));
  });

  afterAll(async () => {
    await apache?.stop();
    await bridge?.close();
    await dir?.remove();
  });

  /** Apache's error log, secrets redacted, for failure messages. */
  async function errorLog(): Promise<string> {
    if (!dir) return '';
    const text = await readFile(join(dir.path, 'error.log'), 'utf8').catch(() => '');
    return redact(text.slice(-5_000), [clientSecret, passphrase]);
  }

  /** The protected page's NAME=value lines (whoami.cgi). */
  function variables(body: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const line of body.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return out;
  }

  /** A person opens the protected page, logs in with WeChat (the sandbox) and lands on it. */
  async function loginThroughApache(person: SandboxUser, browser = navigatingBrowser()) {
    const protectedUrl = `${origin}/protected/whoami`;
    const first = await browser.request(protectedUrl);
    expect(first.status, await errorLog()).toBe(302);
    const authorization = new URL(first.location as string);
    const login = await startLoginAtRp(authorization.href, browser);
    const { callback, page } = await finishLoginAtRp(login, person, redirectUri);
    expect(page.url, await errorLog()).toBe(protectedUrl);
    expect(page.status, `${page.body.slice(0, 500)}\n${await errorLog()}`).toBe(200);
    return { browser, authorization, callback, page, seen: variables(page.body) };
  }

  test('logs a person in: the protected page shows their unionid, with userinfo claims', async () => {
    const b = bridge as Bridge;
    const person = await createSandboxUser(b, '熊猫 Apache 🐼');
    const discovery = (await (await fetch(`${b.url}/.well-known/openid-configuration`)).json()) as {
      authorization_endpoint: string;
      userinfo_endpoint: string;
    };
    // The bridge's access log lines (pino JSON) of successful userinfo requests.
    const userinfoPath = new URL(discovery.userinfo_endpoint).pathname;
    const userinfoCalls = () =>
      b.logs
        .flatMap((chunk) => chunk.split('\n'))
        .filter((line) => {
          if (!line.includes(userinfoPath)) return false;
          const entry = JSON.parse(line) as { msg?: string; path?: string; status?: number };
          return entry.msg === 'request' && entry.path === userinfoPath && entry.status === 200;
        }).length;
    const before = userinfoCalls();

    const { authorization, callback, seen } = await loginThroughApache(person);

    // What mod_auth_openidc asked for, as it comes: the code flow with a nonce and without PKCE.
    expect(authorization.origin + authorization.pathname).toBe(discovery.authorization_endpoint);
    const asked = authorization.searchParams;
    expect(asked.get('response_type')).toBe('code');
    expect(asked.get('client_id')).toBe('apache-mod-auth-openidc');
    expect(asked.get('redirect_uri')).toBe(redirectUri);
    expect(asked.get('scope')?.split(' ').sort()).toEqual(['openid', 'profile']);
    expect(asked.get('nonce')).toBeTruthy();
    expect(asked.get('state')).toBeTruthy();
    expect(asked.has('code_challenge')).toBe(false);
    // The bridge answered Apache's redirect_uri with a code (and Apache took it from there).
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(callback.searchParams.get('state')).toBe(asked.get('state'));

    // Who Apache says is logged in: the sandbox person's unionid, the bridge's sub.
    expect(seen.AUTH_TYPE).toBe('openid-connect');
    expect(seen.OIDC_CLAIM_sub).toBe(person.unionid);
    // mod_auth_openidc's default REMOTE_USER is "sub@" the issuer (less an https:// scheme).
    expect(seen.REMOTE_USER).toBe(`${person.unionid}@${b.url.replace(/^https:\/\//, '')}`);
    expect(seen.OIDC_CLAIM_iss).toBe(b.url);
    expect(seen.OIDC_CLAIM_aud).toBe('apache-mod-auth-openidc');
    expect(seen.OIDC_CLAIM_nonce).toBe(asked.get('nonce'));
    // Profile claims come from userinfo (the ID token carries none under oidc-provider's
    // conformIdTokenClaims), so these prove mod_auth_openidc's userinfo call succeeded.
    expect(seen.OIDC_CLAIM_name).toBe(person.nickname);
    expect(seen.OIDC_CLAIM_nickname).toBe(person.nickname);
    expect(seen.OIDC_CLAIM_picture).toMatch(new RegExp(`^${b.url}/avatars/`));
    expect(userinfoCalls()).toBe(before + 1);
  });

  test('RP-initiated logout through mod_auth_openidc ends the Apache and the bridge sessions', async () => {
    const b = bridge as Bridge;
    const person = await createSandboxUser(b, '退出 Logout');
    const { browser } = await loginThroughApache(person);

    // mod_auth_openidc's logout: its redirect_uri with ?logout=<where to land>.
    const logout = await browser.request(`${redirectUri}?logout=${encodeURIComponent(loggedOutUrl)}`);
    expect(logout.status, await errorLog()).toBe(302);
    const endSession = new URL(logout.location as string);
    expect(endSession.origin).toBe(b.url);
    expect(endSession.searchParams.get('id_token_hint')).toBeTruthy();
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe(loggedOutUrl);

    const done = await confirmLogout(b, browser, await browser.follow(endSession.href));
    expect(done.location?.startsWith(loggedOutUrl), done.location).toBe(true);
    const landed = await browser.follow(done.location as string);
    expect(landed.status).toBe(200);
    expect(landed.body).toContain('logged out of Apache');

    // Both sessions are gone: the protected page sends the browser to the bridge again, and the
    // bridge asks the person to log in (no single sign-on session left).
    const again = await browser.request(`${origin}/protected/whoami`);
    expect(again.status).toBe(302);
    expect(new URL(again.location as string).origin).toBe(b.url);
    const relogin = await startLoginAtRp(again.location as string, browser);
    expect(relogin.loginPage.body).toContain('id="wechat-qr"');
  });

  test('no secret of the relying party reaches the bridge logs or Apache error log', async () => {
    const text = (bridge as Bridge).logs.join('');
    expect(text).not.toContain(clientSecret);
    expect(text).not.toContain(passphrase);
    const log = dir ? await readFile(join(dir.path, 'error.log'), 'utf8').catch(() => '') : '';
    expect(log).not.toContain(clientSecret);
    expect(log).not.toContain(passphrase);
  });
});
