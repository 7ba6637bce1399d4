import type { Kysely } from 'kysely';
import type Provider from 'oidc-provider';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/schema.ts';

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
export function indexAccountArtifacts(provider: Provider, db: Kysely<Database>, logger: Logger): void {
  const record = (model: IndexedModel) => (artifact: ProviderArtifact) => {
    if (!artifact.accountId) return;
    const values = {
      model,
      id: artifact.jti,
      subject: artifact.accountId,
      client_id: artifact.clientId ?? null,
      expires_at: artifact.exp ? new Date(artifact.exp * 1000) : null,
    };
    db.insertInto('account_artifacts')
      .values(values)
      .onConflict((oc) => oc.columns(['model', 'id']).doUpdateSet({ expires_at: values.expires_at }))
      .execute()
      .catch((err) => logger.error({ err, model }, 'could not index an oidc artifact'));
  };
  const forget = (model: IndexedModel) => (artifact: ProviderArtifact) => {
    forgetArtifact(db, model, artifact.jti).catch((err) =>
      logger.error({ err, model }, 'could not unindex an oidc artifact'),
    );
  };
  provider.on('grant.saved', record('Grant'));
  provider.on('session.saved', record('Session'));
  provider.on('grant.destroyed', forget('Grant'));
  provider.on('session.destroyed', forget('Session'));
}

export async function indexedArtifacts(
  db: Kysely<Database>,
  subject: string,
  model: IndexedModel,
): Promise<Array<{ id: string; clientId: string | null }>> {
  const rows = await db
    .selectFrom('account_artifacts')
    .select(['id', 'client_id'])
    .where('subject', '=', subject)
    .where('model', '=', model)
    .orderBy('created_at')
    .execute();
  return rows.map((row) => ({ id: row.id, clientId: row.client_id }));
}

export async function forgetArtifact(db: Kysely<Database>, model: IndexedModel, id: string): Promise<void> {
  await db.deleteFrom('account_artifacts').where('model', '=', model).where('id', '=', id).execute();
}

export async function forgetAccountArtifacts(db: Kysely<Database>, subject: string): Promise<void> {
  await db.deleteFrom('account_artifacts').where('subject', '=', subject).execute();
}
