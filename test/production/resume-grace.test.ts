import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Config } from '../../src/config/types.ts';
import type { StorageKind } from '../../src/storage/ports.ts';
import { type Bridge, RP, storageAvailable } from '../helpers/bridge.ts';
import { type Hop, TestBrowser } from '../helpers/browser.ts';
import {
  authorizationRequest,
  consentAction,
  continueToRp,
  createSandboxUser,
  decideOnWeChat,
  relyingParty,
  type SandboxUser,
  startLogin,
} from '../helpers/flow.ts';
import { type BalancedPair, type LoadBalancer, startBalancedPair } from './load-balancer.ts';

// Issue 6: oidc-provider's resume (GET /auth/:uid) destroys the Interaction before it answers. An
// instance dying before its answer reaches the browser must not cost the person a new QR scan.

const available = await storageAvailable('postgres+redis');

/** Where two instances keep oidc-provider's artifacts: Redis, or PostgreSQL when no Redis is set. */
const ARTIFACT_STORES: Array<{ name: StorageKind; configure: (config: Config) => Config }> = [
  { name: 'redis', configure: (config) => config },
  {
    name: 'postgres',
    configure: (config) => ({ ...config, storage: { ...config.storage, redisUrl: undefined } }),
  },
];

/** A browser that remembers every URL it requested, to replay one of them later. */
class RecordingBrowser extends TestBrowser {
  readonly requested: string[] = [];
  override request(url: string, init: Parameters<TestBrowser['request']>[1] = {}): Promise<Hop> {
    this.requested.push(url);
    return super.request(url, init);
  }
}

/** From the callback's answer (or the consent page) to the resume the consent POST leads to. */
async function consentToResume(browser: TestBrowser, hop: Hop): Promise<string> {
  const page = hop.location ? await browser.request(hop.location) : hop;
  const allow = consentAction(page);
  expect(allow).toBeDefined();
  const consent = await browser.request(allow as string, { method: 'POST', form: {} });
  return consent.location as string;
}

const isResume = (url: string) => /\/auth\/[^/?]+$/.test(new URL(url).pathname);
const reachesRp = (hop: Hop) => hop.location?.startsWith(RP.redirect_uris[0] as string) ?? false;

for (const store of ARTIFACT_STORES) {
  describe.skipIf(!available)(
    `resuming an authorization on two instances (artifacts in ${store.name})`,
    () => {
      let lb: LoadBalancer;
      let first: Bridge;
      let rp: oidc.Configuration;
      let panda: SandboxUser;

      let pair: BalancedPair;

      beforeAll(async () => {
        pair = await startBalancedPair({ configure: store.configure });
        ({ lb, first } = pair);
        rp = await relyingParty({ url: lb.url });
        panda = await createSandboxUser(first, '🐼 熊猫 Panda');
      });
      afterAll(async () => {
        await pair?.close();
      });

      const pin = (instance: number) => pair.pin(instance);

      test('a resume whose answer never reached the browser completes on the other instance', async () => {
        pin(0);
        const login = await startLogin(rp);
        const callback = await decideOnWeChat(login, { user: panda, allow: true });
        const resume = await consentToResume(login.browser, callback);
        expect(isResume(resume)).toBe(true);

        // Instance 0 does the whole resume, then dies before the browser sees its answer.
        const lost = await login.browser.request(resume, { keepCookies: false });
        expect(lost.status).toBe(303);
        expect(lb.served.at(-1)).toMatchObject({ path: new URL(resume).pathname, instance: 0 });

        // The browser's reload, with the cookies it had, reaches the survivor.
        pin(1);
        const reload = await login.browser.request(resume);
        expect(reload.status).toBe(303);
        const tokens = await oidc.authorizationCodeGrant(rp, await continueToRp(login, reload), login.checks);
        expect(tokens.claims()?.sub).toBe(panda.unionid);
      });

      test('a resume replayed after its answer arrived gives no second code', async () => {
        pin(0);
        const browser = new RecordingBrowser();
        const login = await startLogin(rp, { browser });
        const redirect = await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));
        const tokens = await oidc.authorizationCodeGrant(rp, redirect, login.checks);
        expect(tokens.claims()?.sub).toBe(panda.unionid);
        const resumes = browser.requested.filter(isResume);
        // One resume, which issued the code: the consent page came within the login's interaction.
        expect(resumes).toHaveLength(1);

        pin(1);
        for (const resume of resumes) {
          const replay = await browser.request(resume);
          expect(replay.status).toBe(400);
          expect(reachesRp(replay)).toBe(false);
          // Refused for the reason the grace relies on: the answer cleared the resume cookie.
          expect(replay.body).toContain('authorization request has expired');
          // Told as what it is to the person: this login is over, not the application's fault.
          expect(replay.body).toContain('登录已超时或页面已失效');
        }
      });

      test('a completed resume of a logged-in session cannot be replayed with the cookies from before it', async () => {
        pin(0);
        const login = await startLogin(rp);
        await continueToRp(login, await decideOnWeChat(login, { user: panda, allow: true }));
        // The logged-in browser asked to consent again: oidc-provider's consent prompt, whose
        // interaction recorded the session the login made.
        const again = await authorizationRequest(rp, { prompt: 'consent' });
        const consentPage = await login.browser.follow(again.url.href);
        const resume = await consentToResume(login.browser, consentPage);
        expect(isResume(resume)).toBe(true);

        // The resume completes (the code is issued, the session renewed) but the browser keeps the
        // cookies from before it: the Interaction is still there, the session it recorded is not.
        const completed = await login.browser.request(resume, { keepCookies: false });
        expect(reachesRp(completed)).toBe(true);
        pin(1);
        const replay = await login.browser.request(resume);
        expect(replay.status).toBe(400);
        expect(reachesRp(replay)).toBe(false);
        expect(replay.body).toContain('interaction session and authentication session mismatch');
      });
    },
  );
}
