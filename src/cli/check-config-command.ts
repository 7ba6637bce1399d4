import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../config/load.ts';
import { redactConfig } from '../config/redact.ts';
import type { Config } from '../config/types.ts';

export interface CheckConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** The config file; default env CONFIG_FILE, else config/default.yaml. */
  file?: string;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/**
 * Loads the configuration as the server would. Valid: prints the effective configuration, secrets
 * redacted, as YAML on stdout and returns 0. Invalid: prints every problem on stderr and returns 1.
 * Warnings go to stderr either way.
 */
export async function checkConfig(options: CheckConfigOptions): Promise<number> {
  try {
    const config = await loadConfig({
      env: options.env,
      file: options.file,
      onWarning: (message) => options.stderr(`warning: ${message}\n`),
    });
    options.stdout(stringify(redactConfig(asItRuns(config))));
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    options.stderr(`${error.message}\n`);
    return 1;
  }
}

/**
 * What check-config prints for the WeChat base URLs while sandbox.enabled: the server sends every
 * WeChat call and redirect to its in-process emulator then, whatever the file or WECHAT_*_BASE_URL
 * say, on an address known only once it listens. Printing the configured ones (open.weixin.qq.com
 * by default) as effective told an operator a production with the sandbox on talked to WeChat.
 */
export const SANDBOX_BASE_URL =
  "the in-process sandbox's URL (sandbox.enabled), which the start logs as sandboxUrl";

/** The configuration as the server runs it, where that differs from what it loaded. */
function asItRuns(config: Config): Config {
  if (!config.sandbox.enabled) return config;
  return {
    ...config,
    wechat: { ...config.wechat, openBaseUrl: SANDBOX_BASE_URL, apiBaseUrl: SANDBOX_BASE_URL },
  };
}

const USAGE =
  'usage: check-config [FILE]: the configuration as the server would load it (without FILE, CONFIG_FILE or\n' +
  'config/default.yaml), secrets redacted, or every problem in it; NODE_ENV=production applies the\n' +
  'production rules. Exit 0 valid, 1 invalid, 64 wrong arguments.\n';

/** The command as check-config.ts (its entry, which checks the Node version first) runs it. */
export async function main(argv: readonly string[]): Promise<void> {
  if (argv.length > 1 || argv[0]?.startsWith('-')) {
    // --help, or a flag taken for a file name ("config file: must end in .yaml").
    process.stderr.write(USAGE);
    process.exitCode = argv[0] === '--help' || argv[0] === '-h' ? 0 : 64;
    return;
  }
  process.exitCode = await checkConfig({
    file: argv[0],
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
