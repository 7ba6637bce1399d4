import { ConfigError, loadConfig } from './config/load.ts';
import { createDemo } from './demo/demo-client.ts';
import { createViews } from './http/views.ts';
import { createLogger } from './observability/logger.ts';
import { startServer } from './server.ts';

/**
 * Composition root: load and check the config (all problems at once), then start one instance and
 * stop it cleanly on SIGTERM/SIGINT.
 */
async function main(): Promise<void> {
  const warnings: string[] = [];
  let config: Awaited<ReturnType<typeof loadConfig>>;
  try {
    config = await loadConfig({ onWarning: (message) => warnings.push(message) });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(config.log);
  for (const message of warnings) logger.warn(message);

  const running = await startServer(config, {
    logger,
    demo: config.demo.enabled
      ? (issuer) => createDemo(issuer, createViews({ assetBase: '/assets' }))
      : undefined,
  });
  logger.info(
    { issuer: running.url, discovery: `${running.url}/.well-known/openid-configuration` },
    'wechat-oidc-bridge listening',
  );
  if (config.demo.enabled) {
    process.stdout.write(`\n  Try a login: open ${running.url}/demo\n\n`);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error) => {
  process.stderr.write(
    `wechat-oidc-bridge failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
