// The copy-accounts-to-postgres command's entry (README: `node dist/src/cli/copy-accounts-to-postgres.js`).
// The command itself (copy-accounts-command.ts) is imported only once the Node version is checked:
// see runCommand.
import { runCommand } from './entry.ts';

await runCommand(import.meta.url, () => import('./copy-accounts-command.ts'));
