import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Bridge, startBridge } from '../helpers/bridge.ts';
import { decodeEntities } from '../helpers/browser.ts';
import { createSandboxUser, decideOnWeChat } from '../helpers/flow.ts';
import {
  authlibInstalled,
  DEBIAN_PYTHON,
  finishLoginAtRp,
  freePort,
  interopAvailable,
  interopClient,
  navigatingBrowser,
  randomSecret,
  startLoginAtRp,
  TestProcess,
} from '../helpers/interop.ts';

const available = interopAvailable('Python authlib', authlibInstalled(), 'python3-authlib python3-requests');

const SCRIPT = fileURLToPath(new URL('./authlib_rp.py', import.meta.url));

/** One authlib relying party (authlib_rp.py) on its own port, registered with the bridge. */
interface AuthlibRp {
  name: string;
  clientId: string;
  secret: string;
  port: number;
  pkce: boolean;
  origin: string;
  redirectUri: string;
  process?: TestProcess;
}

function rpSetup(name: string, pkce: boolean, port: number): AuthlibRp {
  const origin = `http://127.0.0.1:${port}`;
  return {
    name,
    clientId: `authlib-${name}`,
    secret: randomSecret(),
    port,
    pkce,
    origin,
    redirectUri: `${origin}/callback`,
  };
}

/** What authlib_rp.py answers at /callback. */
interface RpAnswer {
  sub?: string;
  id_token_claims?: Record<string, unknown>;
  userinfo?: Record<string, unknown>;
  scope?: string;
  pkce?: boolean;
  error?: string;
  error_description?: string;
}

/**
 * Debian's python3-authlib (1.2.0) as a relying party: authlib's OAuth 2.0 / OpenID Connect client
 * with its defaults (client_secret_basic, state, nonce, the ID token validated against the JWKS,
 * userinfo), once as it comes (no PKCE) and once with code_challenge_method S256. The person logs in
 * through the website QR login, the sandbox playing WeChat.
 */
describe.skipIf(!available)('Python authlib (Debian) as a relying party', () => {
  let bridge: Bridge | undefined;
  const rps: AuthlibRp[] = [];

  beforeAll(async () => {
    rps.push(rpSetup('plain', false, await freePort()), rpSetup('pkce', true, await freePort()));
    const clients = rps.map((rp) =>
      interopClient({
        client_id: rp.clientId,
        client_name: `authlib ${rp.name}`,
        client_secret: rp.secret,
        redirect_uri: rp.redirectUri,
      }),
    );
    bridge = await startBridge({
      storage: 'embedded',
      configure: (c) => ({ ...c, clients: [...c.clients, ...clients] }),
    });
    for (const rp of rps) {
      rp.process = new TestProcess(`authlib_rp.py (${rp.name})`, DEBIAN_PYTHON, ['-I', SCRIPT], {
        env: {
          PATH: '/usr/bin:/bin',
          LANG: 'C.UTF-8',
          PYTHONDONTWRITEBYTECODE: '1',
          RP_ISSUER: bridge.url,
          RP_CLIENT_ID: rp.clientId,
          RP_CLIENT_SECRET: rp.secret,
          RP_REDIRECT_URI: rp.redirectUri,
          RP_PORT: String(rp.port),
          ...(rp.pkce ? { RP_PKCE: 'S256' } : {}),
        },
        secrets: [rp.secret],
      });
    }
    await Promise.all(
      rps.map((rp) =>
        rp.process?.waitUntilListening(
          rp.port,
          () => rp.process?.printed(`listening on 127.0.0.1:${rp.port}`) ?? false,
        ),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all(rps.map((rp) => rp.process?.stop()));
    await bridge?.close();
  });

  /** The person opens the RP's /login, logs in with WeChat and lands on its /callback. */
  async function loginThroughAuthlib(rp: AuthlibRp, nickname: string) {
    const b = bridge as Bridge;
    const person = await createSandboxUser(b, nickname);
    const browser = navigatingBrowser();
    const first = await browser.request(`${rp.origin}/login`);
    expect(first.status, rp.process?.output()).toBe(302);
    const authorization = new URL(first.location as string);
    const login = await startLoginAtRp(authorization.href, browser);
    const { callback, page } = await finishLoginAtRp(login, person, rp.redirectUri);
    const answer = JSON.parse(page.body) as RpAnswer;
    return { person, authorization, callback, page, answer };
  }

  for (const pkce of [false, true]) {
    test(`${pkce ? 'with PKCE (S256)' : 'as it comes (nonce, no PKCE)'}: authlib validates the ID token, sub is the unionid`, async () => {
      const b = bridge as Bridge;
      const rp = rps.find((r) => r.pkce === pkce) as AuthlibRp;
      const { person, authorization, callback, page, answer } = await loginThroughAuthlib(
        rp,
        pkce ? '派克斯 PKCE 🔐' : '无名 Nonce 🌙',
      );

      // What authlib asked for.
      const asked = authorization.searchParams;
      expect(asked.get('response_type')).toBe('code');
      expect(asked.get('client_id')).toBe(rp.clientId);
      expect(asked.get('redirect_uri')).toBe(rp.redirectUri);
      expect(asked.get('scope')).toBe('openid profile');
      expect(asked.get('state')).toBeTruthy();
      expect(asked.get('nonce')).toBeTruthy();
      if (pkce) {
        expect(asked.get('code_challenge_method')).toBe('S256');
        expect(asked.get('code_challenge')).toMatch(/^[\w-]{43}$/);
      } else {
        expect(asked.has('code_challenge')).toBe(false);
      }
      expect(callback.searchParams.get('state')).toBe(asked.get('state'));

      // What authlib made of the answer: a validated ID token and userinfo.
      expect(page.status, `${page.body}\n${rp.process?.output()}`).toBe(200);
      expect(answer.pkce).toBe(pkce);
      expect(answer.sub).toBe(person.unionid);
      expect(answer.id_token_claims).toMatchObject({
        iss: b.url,
        aud: rp.clientId,
        sub: person.unionid,
        nonce: asked.get('nonce'),
      });
      expect(answer.userinfo).toMatchObject({
        sub: person.unionid,
        name: person.nickname,
        nickname: person.nickname,
      });
      expect(answer.userinfo?.picture).toMatch(new RegExp(`^${b.url}/avatars/`));
      expect(answer.scope?.split(' ').sort()).toEqual(['openid', 'profile']);
    });
  }

  test('the person declines on WeChat: authlib is told access_denied, with its state', async () => {
    const rp = rps[0] as AuthlibRp;
    const person = await createSandboxUser(bridge as Bridge, '拒绝 Decline');
    const browser = navigatingBrowser();
    const first = await browser.request(`${rp.origin}/login`);
    const state = new URL(first.location as string).searchParams.get('state');
    const login = await startLoginAtRp(first.location as string, browser);
    const page = await decideOnWeChat(login, { user: person, allow: false });
    expect(page.status).toBe(400);
    // The bridge's page says why and offers to return to the application: its abort form.
    const form = page.body.match(
      /<form method="post" action="([^"]+)">\s*<input type="hidden" name="reason" value="([^"]+)">/,
    );
    expect(form, page.body.slice(0, 800)).not.toBeNull();
    const [, action = '', reason = ''] = form as RegExpMatchArray;
    const landed = await browser.follow(new URL(decodeEntities(action), page.url).href, {
      method: 'POST',
      form: { reason: decodeEntities(reason) },
    });
    expect(landed.url.startsWith(rp.redirectUri), landed.url).toBe(true);
    expect(new URL(landed.url).searchParams.get('state')).toBe(state);
    expect(landed.status).toBe(400);
    expect((JSON.parse(landed.body) as RpAnswer).error).toBe('access_denied');
  });

  test('no secret of the relying parties reaches the bridge logs or their output', () => {
    const text = (bridge as Bridge).logs.join('');
    for (const rp of rps) {
      expect(text).not.toContain(rp.secret);
      expect(rp.process?.printed(rp.secret)).toBe(false);
    }
  });
});
