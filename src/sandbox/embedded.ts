import type { Config } from '../config/types.ts';
import { listenFailure } from '../http/listen-failure.ts';
import { createSandbox } from './create-sandbox.ts';
import { assertSandboxAllowed } from './production-guard.ts';
import type { ListeningSandbox } from './types.ts';

/**
 * The in-process sandbox the server starts when sandbox.enabled: the configured WeChat
 * apps with their secrets, on its own port (its own origin, as WeChat is). The seed
 * follows the data directory, so the seeded people's accounts (keyed on unionid) survive restarts;
 * people created at run time are new people after a restart, since the sandbox forgets them.
 */
export async function startSandbox(config: Config): Promise<ListeningSandbox> {
  assertSandboxAllowed({
    production: config.production,
    allowInProduction: config.sandbox.allowInProduction,
  });
  const sandbox = createSandbox({
    apps: config.wechat.apps.map((app) => ({
      appid: app.appid,
      secret: app.secret.reveal(),
      kind: app.kind,
      name: app.name,
    })),
    seed: `embedded:${config.dataDir}`,
    stableCreations: false,
  });
  const { port } = config.sandbox;
  return sandbox.listen(port, config.host).catch((error: NodeJS.ErrnoException) => {
    throw listenFailure(
      'sandbox.port',
      config.host,
      port,
      error,
      'free it or choose another (0: any free port)',
    );
  });
}
