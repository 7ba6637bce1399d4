import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** The oldest Node major version the project runs on (package.json's engines). */
const REQUIRED_NODE_MAJOR = 24;

/**
 * Whether the module at `moduleUrl` is the command being run (`node path/to/it.js`), not one
 * imported. `import.meta.main` says so only from Node 24 on: on an older Node it is undefined, so
 * a command guarded by it did nothing and exited 0, and check-config passed every file, a missing
 * one too. Read from the script's path instead, with the version checked next (startCommand).
 */
function isCommand(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/**
 * Whether to run the command of the module at `moduleUrl`: it is the one being run, on a Node it
 * supports. On an older Node it says which to use and sets exit code 1, never a silent 0.
 */
export function startCommand(moduleUrl: string): boolean {
  if (!isCommand(moduleUrl)) return false;
  const refusal = unsupportedNode(process.version);
  if (refusal === undefined) return true;
  process.stderr.write(`${refusal}\n`);
  process.exitCode = 1;
  return false;
}

/** Why a command cannot run on Node `version` (as process.version spells it), or undefined. */
export function unsupportedNode(version: string): string | undefined {
  const major = Number(/^v?(\d+)/.exec(version)?.[1]);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `this command needs Node.js ${REQUIRED_NODE_MAJOR} or later, and this is ${version}: run it with ` +
    'the Node that npm install put in the project (node_modules/.bin/node), or through npm run'
  );
}

/** A command module as its entry loads it: main takes the arguments after the script's path. */
export interface CommandModule {
  main(argv: readonly string[]): Promise<void>;
}

/**
 * Runs the command that `load` imports, when the module at `moduleUrl` (its entry) is the one being
 * run on a supported Node. The command is imported only after the version check: a module that
 * imports node:sqlite, even through others, fails to link on a Node without it (Node 20) before any line of
 * it runs, so a check inside it came too late and the operator got ERR_UNKNOWN_BUILTIN_MODULE and
 * a stack instead of the refusal. An entry therefore imports nothing but this module.
 */
export async function runCommand(moduleUrl: string, load: () => Promise<CommandModule>): Promise<void> {
  if (!startCommand(moduleUrl)) return;
  await (await load()).main(process.argv.slice(2));
}
