import { createPublicKey, generateKeyPairSync, randomUUID, verify } from 'node:crypto';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Config } from '../../src/config/types.ts';
import { type Bridge, startAnotherInstance, startBridge, storageAvailable } from '../helpers/bridge.ts';
import { createSandboxUser, loginAs, relyingParty, type SandboxUser } from '../helpers/flow.ts';
import { type LoadBalancer, startLoadBalancer } from './load-balancer.ts';

type Jwk = Record<string, unknown> & { kid: string };

function rsaSigningKey(): Jwk {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...(privateKey.export({ format: 'jwk' }) as Record<string, unknown>),
    kid: randomUUID(),
    alg: 'RS256',
    use: 'sig',
  };
}

/** Checks an RS256 JWT against a published JWKS: the key its kid names must exist and verify it. */
function verifiesAgainst(jwt: string, jwks: { keys: Jwk[] }): boolean {
  const [header = '', payload = '', signature = ''] = jwt.split('.');
  const { kid } = JSON.parse(Buffer.from(header, 'base64url').toString()) as { kid: string };
  const jwk = jwks.keys.find((key) => key.kid === kid);
  if (!jwk) return false;
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  return verify('sha256', Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url'));
}

function kidOf(jwt: string): string {
  return (JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
}

const available = await storageAvailable('postgres+redis');

describe.skipIf(!available)(
  'signing key rotation with overlap, as a rolling restart of two instances',
  () => {
    const oldKey = rsaSigningKey();
    const newKey = rsaSigningKey();
    let lb: LoadBalancer;
    let first: Bridge;
    /** The instances currently behind the balancer (replaced one at a time, as a rolling deploy does). */
    const instances: Bridge[] = [];
    let rp: oidc.Configuration;
    let panda: SandboxUser;
    /** Every ID token issued so far that must still verify (issued less than its lifetime ago). */
    const live: string[] = [];

    const withKeys = (keys: Jwk[]) => (config: Config) => ({
      ...config,
      issuer: lb.url,
      oidc: { ...config.oidc, jwks: { keys } },
    });

    /**
     * Restarts instance `index` with a new JWKS (the first instance keeps owning the stores), as a
     * rolling deploy does: the balancer drains it (sends everything to the other) while it restarts.
     */
    async function restart(index: number, keys: Jwk[]): Promise<void> {
      const other = index === 0 ? 1 : 0;
      lb.pick = () => other;
      draining.add(index);
      // Requests already forwarded to it finish first, as a balancer's drain lets them.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await instances[index]?.server.close();
      instances[index] = await startAnotherInstance(first, { configure: withKeys(keys) });
      lb.targets[index] = instances[index].instanceUrl;
      draining.delete(index);
      roundRobin();
    }

    /** Instances being restarted are out of the balancer (and their JWKS out of the check). */
    const draining = new Set<number>();

    function roundRobin(): void {
      let turn = 0;
      lb.pick = () => turn++ % lb.targets.length;
    }

    /**
     * Load for the whole rotation: workers log in through the balancer without pause, and each new
     * ID token must verify against the JWKS every instance publishes at that moment.
     */
    const load = { stop: false, logins: 0, loginErrors: [] as string[], unverified: [] as string[] };
    let loadDone: Promise<unknown> = Promise.resolve();
    async function loadWorker(): Promise<void> {
      while (!load.stop) {
        try {
          const { tokens } = await loginAs(rp, panda);
          const token = tokens.id_token as string;
          const serving = instances.filter((_, index) => !draining.has(index));
          const published = await Promise.all(serving.map((instance) => jwksOf(instance)));
          if (!published.every((jwks) => verifiesAgainst(token, jwks))) load.unverified.push(kidOf(token));
          load.logins++;
        } catch (error) {
          load.loginErrors.push(error instanceof Error ? error.message.slice(0, 120) : String(error));
        }
      }
    }

    async function jwksOf(instance: Bridge): Promise<{ keys: Jwk[] }> {
      return (await (await fetch(`${instance.instanceUrl}/jwks`)).json()) as { keys: Jwk[] };
    }

    /** A login on each instance; then every live ID token must verify against every instance's JWKS. */
    async function loginEverywhereAndVerify(): Promise<string[]> {
      const kids: string[] = [];
      for (let index = 0; index < instances.length; index++) {
        lb.pick = () => index;
        const { tokens } = await loginAs(rp, panda);
        live.push(tokens.id_token as string);
        kids.push(kidOf(tokens.id_token as string));
      }
      roundRobin();
      for (const instance of instances) {
        const jwks = await jwksOf(instance);
        for (const token of live) expect(verifiesAgainst(token, jwks), `kid ${kidOf(token)}`).toBe(true);
      }
      return kids;
    }

    beforeAll(async () => {
      lb = await startLoadBalancer();
      first = await startBridge({ storage: 'postgres+redis', configure: withKeys([oldKey]) });
      instances.push(first, await startAnotherInstance(first));
      lb.targets = instances.map((instance) => instance.instanceUrl);
      rp = await relyingParty({ url: lb.url });
      panda = await createSandboxUser(first, '🐼 熊猫 Panda');
      roundRobin();
      loadDone = Promise.all([loadWorker(), loadWorker(), loadWorker()]);
    });
    afterAll(async () => {
      load.stop = true;
      await loadDone;
      await lb?.close();
      for (const instance of instances.slice(1)) await instance.close();
      await instances[0]?.server.close();
      await first?.close();
    });

    test('step 0: one key signs and is published', async () => {
      expect(await loginEverywhereAndVerify()).toEqual([oldKey.kid, oldKey.kid]);
    });

    test('step 1: the new key is published on every instance before any instance signs with it', async () => {
      await restart(0, [oldKey, newKey]);
      expect(await loginEverywhereAndVerify()).toEqual([oldKey.kid, oldKey.kid]);
      await restart(1, [oldKey, newKey]);
      expect(await loginEverywhereAndVerify()).toEqual([oldKey.kid, oldKey.kid]);
      for (const instance of instances)
        expect((await jwksOf(instance)).keys.map((key) => key.kid)).toEqual([oldKey.kid, newKey.kid]);
    });

    test('step 2: the new key signs, the old one stays published for the tokens it signed', async () => {
      await restart(0, [newKey, oldKey]);
      // Mid-deploy: one instance signs with the new key, the other with the old; both verify everywhere.
      expect(await loginEverywhereAndVerify()).toEqual([newKey.kid, oldKey.kid]);
      await restart(1, [newKey, oldKey]);
      expect(await loginEverywhereAndVerify()).toEqual([newKey.kid, newKey.kid]);
    });

    test('step 3: once the old tokens have expired, the old key is removed', async () => {
      // Tokens signed by the old key are past their lifetime now (the operator waits ttl.idToken).
      live.splice(0, live.length, ...live.filter((token) => kidOf(token) === newKey.kid));
      await restart(0, [newKey]);
      await restart(1, [newKey]);
      expect(await loginEverywhereAndVerify()).toEqual([newKey.kid, newKey.kid]);
      for (const instance of instances)
        expect((await jwksOf(instance)).keys.map((key) => key.kid)).toEqual([newKey.kid]);
    });

    test('under load all along, no login failed and every ID token verified on every instance', async () => {
      load.stop = true;
      await loadDone;
      expect(load.logins).toBeGreaterThan(0);
      expect(load.loginErrors).toEqual([]);
      expect(load.unverified).toEqual([]);
    });
  },
);
