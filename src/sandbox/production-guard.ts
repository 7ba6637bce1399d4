/** The sandbox hands out logins to anyone who clicks: refuse it in production unless explicitly allowed. */
export function assertSandboxAllowed(p: { production: boolean; allowInProduction: boolean }): void {
  if (p.production && !p.allowInProduction) {
    throw new Error(
      'The WeChat sandbox lets anyone log in as anyone and must not run in production ' +
        '(NODE_ENV=production). Turn the sandbox off, or set sandbox.allowInProduction ' +
        '(--allow-production for the standalone sandbox) if this really is a demo deployment.',
    );
  }
}
