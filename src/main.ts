import { ConfigError, loadConfig } from './config/load.ts';
import type { Config } from './config/types.ts';
import { createDemo } from './demo/demo-client.ts';
import { createViews } from './http/views.ts';
import { causes } from './observability/causes.ts';
import { logConsoleOutput } from './observability/console-to-log.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { VERSION } from './observability/version.ts';
import { type RunningServer, startServer } from './server.ts';

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
  startLog = logger;
  logConsoleOutput(logger);
  for (const message of warnings) logger.warn(message);
  // A rejection nobody awaited is a bug to fix, not a reason to drop every in-flight login.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

  let running: RunningServer | undefined;
  let stopping = false;
  const stop = (signal: string, code = 0) => {
    if (stopping) {
      // A second signal: the operator does not want to wait for the drain.
      if (signal !== 'uncaughtException') process.exit(code || 1);
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // Still starting (stores connecting, migrations under way): nothing to drain, and a migration
    // cut short rolls back. As PID 1 in a container, a signal without a handler would be ignored.
    if (!running) process.exit(code);
    // A store that hangs must not hold the process: past the delay, the drain and a grace for the
    // stores to close, it exits anyway (a second signal, or the orchestrator's kill, would too).
    const seconds = shutdownDeadlineSeconds(config);
    setTimeout(() => {
      logger.error({ seconds }, 'shutdown did not finish in time: exiting');
      process.exit(1);
    }, seconds * 1000).unref();
    running.close().then(
      () => process.exit(code),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The process state is unknown after an uncaught exception: finish what is in flight and exit.
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception');
    stop('uncaughtException', 1);
  });

  running = await startServer(config, {
    logger,
    demo: config.demo.enabled
      ? (issuer) => createDemo(issuer, createViews({ assetBase: '/assets' }))
      : undefined,
  });
  logger.info(
    {
      version: VERSION,
      issuer: running.url,
      discovery: `${running.url}/.well-known/openid-configuration`,
      // Where Prometheus and the probes go when /metrics has left the public port (config.management).
      ...(running.managementUrl && { metrics: `${running.managementUrl}/metrics` }),
    },
    'wechat-oidc-bridge listening',
  );
  if (config.demo.enabled) {
    // The sandbox listens on a port of its own (any free one by default): its page is named here.
    const sandboxPage = running.sandboxUrl
      ? `  The WeChat sandbox's page (its users, faults): ${running.sandboxUrl}/sandbox\n`
      : '';
    process.stdout.write(`\n  Try a login: open ${running.url}/demo\n${sandboxPage}\n`);
  }
}

/** Seconds after the signal by which a shutdown has finished, or the process exits regardless. */
function shutdownDeadlineSeconds(config: Config): number {
  return config.shutdown.delay + config.shutdown.timeout + STORES_CLOSE_SECONDS;
}

/** For the stores to close after the drain: pending writes flushed, pools ended. */
const STORES_CLOSE_SECONDS = 10;

/** The log, once the configuration has made one: a start that fails after that is logged there too. */
let startLog: Logger | undefined;

main().catch((error) => {
  const reason = causes(error);
  // The log is JSON lines on standard output: a pipeline reading it only saw the last line before
  // the process ended (an operator's review), not why. Standard error keeps the reason in plain
  // text, for a person at a terminal and for a failure before the log exists (the configuration's).
  startLog?.fatal({ reason, version: VERSION }, 'wechat-oidc-bridge failed to start');
  process.stderr.write(`wechat-oidc-bridge failed to start: ${reason}\n`);
  process.exit(1);
});
