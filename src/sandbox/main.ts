import { parseSandboxArgs, USAGE } from './cli-options.ts';
import { createSandbox } from './create-sandbox.ts';
import { assertSandboxAllowed } from './production-guard.ts';

/** Standalone sandbox: prints its URL on the first line of stdout, stops on SIGINT/SIGTERM. */
async function main(): Promise<number> {
  let options: ReturnType<typeof parseSandboxArgs>;
  try {
    options = parseSandboxArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    assertSandboxAllowed({
      production: process.env.NODE_ENV === 'production',
      allowInProduction: options.allowProduction,
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    return 1;
  }
  const sandbox = createSandbox({
    apps: options.apps,
    seed: options.seed,
    contentType: options.contentType,
    denyMode: options.denyMode,
    deliverTwice: options.deliverTwice,
  });
  const listening = await sandbox.listen(options.port, options.host);
  process.stdout.write(`${listening.url}\n`);
  for (const app of options.apps) {
    process.stderr.write(
      `sandbox app ${app.kind} ${app.appid}${app.boundToOpenPlatform === false ? ' (unbound)' : ''}\n`,
    );
  }
  process.stderr.write(`developer page: ${listening.url}/sandbox\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await listening.close();
  return 0;
}

process.exitCode = await main();
