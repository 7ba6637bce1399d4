import type { Kysely, Transaction } from 'kysely';
import type Provider from 'oidc-provider';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/schema.ts';
import { type SweeperOptions, startSweeper, sweepExpired } from '../storage/sql/sweeper.ts';
import { flushIndexWrites, indexWriter, unwrittenIndexRows } from './artifact-batch.ts';

type IndexedModel = 'Grant' | 'Session';

interface ProviderArtifact {
  jti: string;
  accountId?: string;
  clientId?: string;
  exp?: number;
}

/**
 * Keeps account_artifacts in step with oidc-provider: every grant and logged-in session saved is
 * recorded under its account's subject, and forgotten when oidc-provider destroys it. The adapters
 * key artifacts by id only; this is how the account page lists a person's applications and how
 * "sign out everywhere" and deletion find every grant and session.
 */
export function indexAccountArtifacts(
  provider: Provider,
  db: Kysely<Database>,
  logger: Logger,
): () => Promise<void> {
  const writer = indexWriter(db, logger);
  const record = (model: IndexedModel) => (artifact: ProviderArtifact) => {
    if (!artifact.accountId) return;
    writer.add({
      model,
      id: artifact.jti,
      subject: artifact.accountId,
      client_id: artifact.clientId ?? null,
      expires_at: artifact.exp ? new Date(artifact.exp * 1000) : null,
    });
  };
  const forget = (model: IndexedModel) => (artifact: ProviderArtifact) => {
    writer.drop(model, artifact.jti);
    forgetArtifact(db, model, artifact.jti).catch((err) =>
      logger.error({ err, model }, 'could not unindex an oidc artifact'),
    );
  };
  provider.on('grant.saved', record('Grant'));
  provider.on('session.saved', record('Session'));
  provider.on('grant.destroyed', forget('Grant'));
  provider.on('session.destroyed', forget('Session'));
  return () => writer.flush();
}

export async function indexedArtifacts(
  db: Kysely<Database>,
  subject: string,
  model: IndexedModel,
): Promise<Array<{ id: string; clientId: string | null }>> {
  await flushIndexWrites(db);
  const rows = await db
    .selectFrom('account_artifacts')
    .select(['id', 'client_id'])
    .where('subject', '=', subject)
    .where('model', '=', model)
    .orderBy('created_at')
    .execute();
  return rows.map((row) => ({ id: row.id, clientId: row.client_id }));
}

/**
 * The clients holding a grant for the subject: the relying parties that know this `sub`. Read in
 * `trx`, the transaction of a change that announces something to them, together with the rows
 * this process has handed to db's index writer and not written yet (a flush cannot run inside the
 * transaction on SQLite, and a login must not force out the batch it shares).
 */
export async function clientsWithGrants(
  db: Kysely<Database>,
  trx: Transaction<Database>,
  subject: string,
): Promise<string[]> {
  // Memory first: a row leaves it only once written, so none falls between the two reads.
  const unwritten = unwrittenIndexRows(db).filter((row) => row.model === 'Grant' && row.subject === subject);
  const written = await trx
    .selectFrom('account_artifacts')
    .select('client_id')
    .distinct()
    .where('subject', '=', subject)
    .where('model', '=', 'Grant')
    .where('client_id', 'is not', null)
    .execute();
  const clientIds = [...unwritten, ...written].flatMap((row) => (row.client_id ? [row.client_id] : []));
  return [...new Set(clientIds)];
}

export async function forgetArtifact(db: Kysely<Database>, model: IndexedModel, id: string): Promise<void> {
  await db.deleteFrom('account_artifacts').where('model', '=', model).where('id', '=', id).execute();
}

/** How often the index is swept: its rows are only read per account, so staleness costs little. */
const ARTIFACT_SWEEP_INTERVAL_MS = 5 * 60_000;

/**
 * Sweeps the index periodically: oidc-provider emits no destroyed event when a grant or session
 * simply expires (Redis drops the key, the SQL adapter's sweeper the row), so without this the
 * rows of expired ones would stay forever. Returns the stop function.
 */
export function startArtifactSweep(
  db: Kysely<Database>,
  logger: Logger,
  { intervalMs = ARTIFACT_SWEEP_INTERVAL_MS }: { intervalMs?: number } = {},
): () => void {
  const options: SweeperOptions = {
    sweepIntervalMs: intervalMs,
    onSweepError: (err) =>
      logger.warn(
        { reason: err instanceof Error ? err.message : String(err) },
        'account artifact index sweep failed',
      ),
  };
  return startSweeper(() => sweepExpired(db, 'account_artifacts', new Date()), options);
}
