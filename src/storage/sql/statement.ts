import { CompiledQuery, type Kysely } from 'kysely';
import type { Database } from '../schema.ts';

/**
 * Runs a statement written as SQL text with its parameters ($1, $2, ...), past kysely's builder:
 * for the SQL stores' per-call statements, which the builder composed and compiled again on every
 * call (./oidc-adapter.ts).
 */
export function runStatement<R>(
  db: Kysely<Database>,
  text: string,
  parameters: unknown[],
): Promise<{ rows: R[] }> {
  return db.executeQuery<R>(CompiledQuery.raw(text, parameters));
}
