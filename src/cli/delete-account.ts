// The delete-account command's entry (README: `node dist/src/cli/delete-account.js --unionid <id>`).
// The command itself (delete-account-command.ts) is imported only once the Node version is checked:
// see runCommand.
import { runCommand } from './entry.ts';

await runCommand(import.meta.url, () => import('./delete-account-command.ts'));
