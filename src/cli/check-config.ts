import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../config/load.ts';
import { redactConfig } from '../config/redact.ts';
import { startCommand } from './entry.ts';

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
    options.stdout(stringify(redactConfig(config)));
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    options.stderr(`${error.message}\n`);
    return 1;
  }
}

if (startCommand(import.meta.url)) {
  // Usage: check-config [FILE]; without FILE, CONFIG_FILE or config/default.yaml as the server does.
  process.exitCode = await checkConfig({
    file: process.argv[2],
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  });
}
