import { existsSync } from 'node:fs';
import { createSqlAvatarStore } from '../accounts/avatars/store.ts';
import { rememberedScopes } from '../accounts/consents.ts';
import { deleteAccount, findAccountForOperator } from '../accounts/deletion.ts';
import { startEventDelivery } from '../accounts/event-delivery.ts';
import { createAccountNotifier } from '../accounts/events.ts';
import { createWebhookSender } from '../accounts/webhooks.ts';
import type { Config } from '../config/types.ts';
import { createViews } from '../http/views.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { createFindAccount } from '../oidc/find-account.ts';
import { loadProviderKeys } from '../oidc/keys.ts';
import { createProvider } from '../oidc/provider.ts';
import { describeUrl } from '../storage/describe-url.ts';
import { openStores } from '../storage/open-stores.ts';
import { embeddedAccountsFile } from '../storage/sqlite/accounts-database.ts';
import { type CommandOutput, runWithConfig } from './with-config.ts';

export type DeletionTarget = { unionid: string } | { openid: string };

export interface DeleteAccountCommandOptions extends CommandOutput {
  config: Config;
  target: DeletionTarget;
  logger: Logger;
  now?: () => Date;
}

/**
 * A data-subject request, by an operator: the same deletion as the account page (every grant,
 * token and session revoked, back-channel logout sent, account events queued and tried once here,
 * profile, avatar, identities and phone erased, an audit row with counts only). Prints counts, never
 * the person's data. 0: deleted; 2: no such account; 1: it could not look (no embedded store at
 * dataDir, a store unreachable).
 */
export async function deleteAccountCommand(options: DeleteAccountCommandOptions): Promise<number> {
  const { config, logger } = options;
  // Opening the embedded store where there is none would create an empty one, and "no account
  // matches" would close a deletion request while the data stays where dataDir should have led.
  const embedded = config.storage.databaseUrl ? undefined : embeddedAccountsFile(config.dataDir);
  if (embedded && !existsSync(embedded)) {
    options.stderr(`${embedded} does not exist: no embedded store there (is dataDir the server's?)\n`);
    return 1;
  }
  const stores = await openStores({ ...config.storage, dataDir: config.dataDir, logger });
  try {
    const account = await findAccountForOperator(stores.db, options.target);
    if (!account) {
      options.stderr(`no account matches in ${describeStore(config)}\n`);
      return 2;
    }
    // The provider only signs the back-channel logout tokens; it serves no requests here.
    const keys = await loadProviderKeys(config, logger);
    const now = options.now ?? (() => new Date());
    const provider = createProvider({
      config,
      clients: config.clients,
      keys,
      adapter: stores.oidcAdapter,
      findAccount: createFindAccount(stores.db),
      views: createViews({ assetBase: '/assets' }),
      logger,
      rememberedScopes: (subject, clientId) => rememberedScopes(stores.db, subject, clientId),
    });
    const notifier = createAccountNotifier(
      provider,
      createWebhookSender({ issuer: config.issuer, jwks: keys.jwks, logger, now }),
      logger,
    );
    const report = await deleteAccount(
      {
        adapter: stores.oidcAdapter,
        db: stores.db,
        avatars: createSqlAvatarStore(stores.db),
        kv: stores.kv,
        scrub: stores.scrub,
        logger,
        now,
        notify: (event) => notifier.deleted(event),
      },
      account,
      'operator',
    );
    // One delivery attempt before exiting; what fails stays queued for the servers' delivery loops.
    const delivery = startEventDelivery({ db: stores.db, logger, pollIntervalMs: 0 });
    await delivery.deliverDue();
    await delivery.stop();
    options.stdout(
      `account deleted: ${report.identities} identities, ${report.grantsRevoked} grants revoked, ${report.sessionsEnded} sessions ended\n`,
    );
    return 0;
  } finally {
    await stores.close();
  }
}

/** The account store searched, for the operator (a URL without its password). */
function describeStore(config: Config): string {
  const url = config.storage.databaseUrl;
  return url ? describeUrl(url) : embeddedAccountsFile(config.dataDir);
}

/** --unionid <id> or --openid <id>. */
export function parseTarget(argv: readonly string[]): DeletionTarget | undefined {
  // --unionid=X as well as --unionid X.
  const [flag, value, ...rest] = argv.length === 1 ? (argv[0]?.split(/=(.*)/s, 2) ?? []) : argv;
  if (!value || rest.length > 0) return undefined;
  if (flag === '--unionid') return { unionid: value };
  if (flag === '--openid') return { openid: value };
  return undefined;
}

/**
 * The command as delete-account.ts (its entry, which checks the Node version first) runs it: usage
 * delete-account --unionid <unionid> | --openid <openid>, the configuration as the server reads it.
 */
export async function main(argv: readonly string[]): Promise<void> {
  const target = parseTarget(argv);
  if (!target) {
    process.stderr.write('usage: delete-account --unionid <unionid> | --openid <openid>\n');
    process.exitCode = 64;
    return;
  }
  await runWithConfig('delete-account', (config, output) =>
    deleteAccountCommand({
      config,
      target,
      logger: createLogger({ level: config.log.level, destination: process.stderr }),
      ...output,
    }),
  );
}
