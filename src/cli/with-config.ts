import { ConfigError, loadConfig } from '../config/load.ts';
import type { Config } from '../config/types.ts';

/** Where an operator command writes. */
export interface CommandOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/**
 * Runs an operator command with the configuration read as the server reads it (CONFIG_FILE,
 * NODE_ENV and the environment overrides), its warnings on stderr. A configuration that does not
 * load is its message on stderr and exit code 1; otherwise the command's own code is the exit code.
 */
export async function runWithConfig(
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
    if (!(error instanceof ConfigError)) throw error;
    output.stderr(`${error.message}\n`);
    process.exitCode = 1;
  }
}
