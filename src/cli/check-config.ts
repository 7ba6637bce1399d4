// The check-config command's entry (`npm run check-config`, `node dist/src/cli/check-config.js`).
// The command itself (check-config-command.ts) is imported only once the Node version is checked:
// see runCommand.
import { runCommand } from './entry.ts';

await runCommand(import.meta.url, () => import('./check-config-command.ts'));
