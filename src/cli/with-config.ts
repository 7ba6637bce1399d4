import { ConfigError, loadConfig } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { causes } from '../observability/causes.ts';

/** Where an operator command writes. */
export interface CommandOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/**
 * Runs an operator command with the configuration read as the server reads it (CONFIG_FILE,
 * NODE_ENV and the environment overrides), its warnings on stderr. A configuration that does not
 * load is its message on stderr and exit code 1, and so is any failure of the command (a store
 * unreachable, the embedded store open in a running server): one line naming the command and the
 * causes, not a stack trace. Otherwise the command's own code is the exit code.
 */
export async function runWithConfig(
  name: string,
  command: (config: Config, output: CommandOutput) => Promise<number>,
): Promise<void> {
  const output: CommandOutput = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  };
  try {
    const config = await loadConfig({ onWarning: (message) => output.stderr(`warning: ${message}\n`) });
    process.exitCode = await command(config, output);
  } catch (error) {
    output.stderr(error instanceof ConfigError ? `${error.message}\n` : `${name} failed: ${causes(error)}\n`);
    process.exitCode = 1;
  }
}
