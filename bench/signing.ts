import { importJWK, SignJWT } from 'jose';
import { ALGORITHMS, type Algorithm } from './spec.ts';

export interface SigningLimit {
  alg: Algorithm;
  signatures: number;
  cpuMs: number;
  /** ID-token signatures per second of one core's CPU time: the ceiling of any token endpoint. */
  perCoreSecond: number;
}

/**
 * The machine's signing limit: ID tokens like the bridge's (same keys, same claims) signed with
 * jose, as oidc-provider does, one after another in this process, for about `budgetMs` of CPU each.
 */
export async function measureSigningLimits(
  jwks: { keys: Record<string, unknown>[] },
  budgetMs: number,
): Promise<SigningLimit[]> {
  const results: SigningLimit[] = [];
  for (const alg of ALGORITHMS) {
    const jwk = jwks.keys.find((key) => key.alg === alg);
    if (!jwk) throw new Error(`no ${alg} key in the run's JWKS`);
    const key = await importJWK(jwk, alg);
    const sign = () =>
      new SignJWT(idTokenClaims()).setProtectedHeader({ alg, typ: 'JWT', kid: String(jwk.kid) }).sign(key);
    for (let i = 0; i < 50; i++) await sign();
    const before = process.cpuUsage();
    let signatures = 0;
    let cpuMs = 0;
    while (cpuMs < budgetMs) {
      for (let i = 0; i < 20; i++) await sign();
      signatures += 20;
      const used = process.cpuUsage(before);
      cpuMs = (used.user + used.system) / 1000;
    }
    results.push({ alg, signatures, cpuMs, perCoreSecond: (signatures / cpuMs) * 1000 });
  }
  return results;
}

/** The claims of a bridge ID token under `openid profile` (sizes as WeChat's). */
function idTokenClaims(): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'http://127.0.0.1:3000',
    sub: 'oRbX-5g2Ulg5bMxPaW1Nk8YJgd5w',
    aud: 'bench-rs256',
    exp: now + 3600,
    iat: now,
    auth_time: now,
    nonce: 'kWYIoYYWi2KoBcCMg4dh0qeOfUg6rN0nEHSeBTsFiDM',
    at_hash: 'F0y6m2SrJBzl6Cn2ERkX1A',
    sid: '6b0d9bd0-08a4-4c3a-9c3c-a7a4c1a1e7f3',
    amr: ['wechat'],
    name: '微信用户小明 🐼',
    nickname: '微信用户小明 🐼',
    picture: 'https://thirdwx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTLq4bBq3d6gcl0c9nB1Q0ak8wQ/132',
    updated_at: now,
  };
}
