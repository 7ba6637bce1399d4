import type { Findings } from './findings.ts';
import { field } from './raw.ts';

/**
 * Development-only settings: refused in production, warned about otherwise. Reads the raw file
 * (defaults are all "off") so the policy is reported together with schema problems.
 */
export function checkEnvironmentPolicy(raw: unknown, production: boolean, findings: Findings): void {
  const sandbox = field(raw, 'sandbox');
  const oidc = field(raw, 'oidc');

  if (field(sandbox, 'enabled') === true) {
    if (!production)
      findings.warn('sandbox.enabled', 'WeChat logins go to the built-in emulator (development only)');
    else if (field(sandbox, 'allowInProduction') === true) {
      findings.warn('sandbox.enabled', 'WeChat logins go to the built-in emulator, in production');
    } else {
      findings.problem(
        'sandbox.enabled',
        'the WeChat emulator is refused in production unless sandbox.allowInProduction is true',
      );
    }
  }

  if (field(field(raw, 'demo'), 'enabled') === true) {
    if (production) findings.problem('demo.enabled', 'the demo relying party is refused in production');
    else findings.warn('demo.enabled', 'the demo relying party is registered (development only)');
  }

  for (const name of ['jwks', 'cookieKeys'] as const) {
    if (field(oidc, name) !== undefined) continue;
    if (production)
      findings.problem(`oidc.${name}`, 'is required in production (generated keys are for development)');
    else findings.warn(`oidc.${name}`, 'not set: keys are generated into dataDir (development only)');
  }
}
