import type { Kysely, Transaction } from 'kysely';
import { forgetGrantIdentities } from '../mini-program/grant-identities.ts';
import { errorClass } from '../observability/causes.ts';
import type { Logger } from '../observability/logger.ts';
import type { AdapterFactory, KeyValueStore } from '../storage/ports.ts';
import type { Database } from '../storage/schema.ts';
import { type SweeperOptions, startSweeper } from '../storage/sql/sweeper.ts';
import { findAccountBySubject } from './repository.ts';
import { findEverything, revokeFound } from './revocation.ts';

export interface CleanupDeps {
  adapter: AdapterFactory;
  db: Kysely<Database>;
  kv?: KeyValueStore;
  /** Clears what deleted rows leave in the embedded files (Stores.scrub): the notes name the subject. */
  scrub?: () => Promise<void>;
  logger: Logger;
  now: () => Date;
}

/**
 * How long a deletion's cleanup waits for its last pass: past the longest request that may have
 * been in flight at the deletion (limits.requestTimeout, a minute), whose grant or session index
 * rows can land after the deletion's own passes.
 */
export const CLEANUP_DELAY_MS = 2 * 60_000;

/** How often an instance looks for cleanups due; each is one indexed read when none is. */
const CLEANUP_INTERVAL_MS = 60_000;

/** A failed cleanup is tried again after this, doubled per attempt, up to an hour. */
const RETRY_BASE_MS = 60_000;
const RETRY_MAX_MS = 60 * 60_000;

/**
 * Attempts before a cleanup is given up (about a day, with the delays above): its note names the
 * unionid, and what it would remove expires anyway (a refresh token within 14 days), unusable.
 */
export const CLEANUP_MAX_ATTEMPTS = 30;

/** Cleanups taken per pass: a burst of deletions is worked through over a few passes. */
const BATCH = 50;

/**
 * Notes, in the deletion's transaction, that the deleted subject's leftovers outside this database
 * (grants, tokens and sessions in the shared store, the identities mini-program grants remembered)
 * are to be looked for again once CLEANUP_DELAY_MS has passed: should the deletion's own passes
 * after the commit fail (the store down or not answering), or a login in flight at the deletion
 * index a grant after them, the person's data would otherwise stay in Redis until it expired, up
 * to 14 days, with nothing left to find it by.
 */
export async function scheduleCleanup(trx: Transaction<Database>, subject: string, now: Date): Promise<void> {
  const due_at = new Date(now.getTime() + CLEANUP_DELAY_MS);
  await trx
    .insertInto('account_cleanups')
    .values({ subject, due_at })
    .onConflict((oc) => oc.column('subject').doUpdateSet({ due_at, attempts: 0 }))
    .execute();
}

/**
 * One pass over the cleanups due: each subject's indexed grants and sessions revoked, its
 * remembered mini-program identities forgotten, then its row removed; a failure leaves the row,
 * due again later. Every instance runs it; the revocations are idempotent. Resolves how many
 * cleanups were finished.
 */
export async function finishDeletions(deps: CleanupDeps): Promise<number> {
  const due = await deps.db
    .selectFrom('account_cleanups')
    .select(['subject', 'attempts', 'due_at'])
    .where('due_at', '<=', deps.now())
    .orderBy('due_at')
    .limit(BATCH)
    .execute();
  let finished = 0;
  for (const { subject, attempts, due_at } of due) {
    // The row as read: a deletion of the same subject meanwhile (signed up and deleted again) has
    // renewed it, and its own pass is still to come.
    const sameNote = deps.db
      .deleteFrom('account_cleanups')
      .where('subject', '=', subject)
      .where('due_at', '=', due_at);
    try {
      await cleanUp(deps, subject);
      await sameNote.execute();
      finished += 1;
    } catch (error) {
      if (attempts + 1 >= CLEANUP_MAX_ATTEMPTS) {
        await sameNote.execute();
        deps.logger.error(
          { reason: errorClass(error), attempts: attempts + 1 },
          "a deleted account's leftovers in the store could not be removed: given up; they expire unused",
        );
        continue;
      }
      const retryMs = Math.min(RETRY_BASE_MS * 2 ** attempts, RETRY_MAX_MS);
      await deps.db
        .updateTable('account_cleanups')
        .set({ attempts: attempts + 1, due_at: new Date(deps.now().getTime() + retryMs) })
        .where('subject', '=', subject)
        .where('due_at', '=', due_at)
        .execute();
      deps.logger.warn(
        { reason: errorClass(error), attempts: attempts + 1, retryInSeconds: retryMs / 1000 },
        "a deleted account's leftovers in the store could not be removed yet",
      );
    }
  }
  if (finished > 0) await deps.scrub?.();
  return finished;
}

/**
 * What the subject still has outside this database. Not when the person has signed up again since
 * (the subject is the unionid): the new account's grants and sessions are indexed under the same
 * subject, and the old ones are refused anyway, as issued before the account (find-account.ts),
 * until they expire.
 */
async function cleanUp(deps: CleanupDeps, subject: string): Promise<void> {
  const found = await findEverything(deps, subject);
  // Looked for after the index is read, just before revoking: a sign-up before this look would
  // otherwise lose the grant of its first login (an outside review).
  if (await findAccountBySubject(deps.db, subject)) return;
  await revokeFound(deps, subject, found);
  if (deps.kv) await forgetGrantIdentities(deps.kv, found.grantIds);
}

/** Runs finishDeletions every minute; returns the stop function. */
export function startDeletionCleanup(
  deps: CleanupDeps,
  { intervalMs = CLEANUP_INTERVAL_MS }: { intervalMs?: number } = {},
): () => void {
  const options: SweeperOptions = {
    sweepIntervalMs: intervalMs,
    onSweepError: (error) =>
      deps.logger.warn({ reason: errorClass(error) }, 'the pass over deleted accounts failed'),
  };
  return startSweeper(() => finishDeletions(deps), options);
}
