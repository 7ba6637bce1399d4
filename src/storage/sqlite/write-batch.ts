import type { DatabaseSync, SQLInputValue, StatementResultingChanges } from 'node:sqlite';

/**
 * Group commit for the embedded artifacts file (./database.ts). SQLite commits each statement
 * outside a transaction on its own, appending every page the statement touched (table leaf,
 * primary key, grant and expiry indexes) to the write-ahead log again: a login's fifteen to
 * twenty-five writes were about a hundred page writes, most of the same few pages. Here the first
 * write opens a transaction that the writes after it join, and it is committed
 *
 * - before any HTTP answer's head leaves the server (`commit`, called by the server: see
 *   src/http/committed-answers.ts), so no answer ever confirms a write that is not committed, and
 * - at the latest at the next turn of the event loop (writes no answer waits for: sweeps,
 *   background work).
 *
 * So a request's writes (a token call's consume and saves, say) and those of requests handled in
 * the same turn share one commit. Statements stay atomic one by one as before: a failed statement
 * takes back only itself, and node:sqlite's calls are synchronous, so no other request runs between
 * a statement's start and end. What is new is that a commit can fail (a full disk, an I/O error)
 * after the statements it holds succeeded: it is rolled back and `onFailure` told, which must see
 * to it that no request in flight then answers as if its writes were kept (the server closes every
 * connection: src/server.ts).
 */
export interface WriteBatch {
  /** A write statement whose runs join the open transaction (opening one when none is). */
  prepare(sql: string): WriteStatement;
  /** Commits what was written since the last commit; nothing when nothing was. */
  commit(): void;
}

export interface WriteStatement {
  run(...parameters: SQLInputValue[]): StatementResultingChanges;
  get(...parameters: SQLInputValue[]): unknown;
}

export function createWriteBatch(
  database: DatabaseSync,
  options: { onFailure(error: Error): void },
): WriteBatch {
  let open = false;
  const commit = () => {
    if (!open) return;
    open = false;
    try {
      database.exec('commit');
    } catch (error) {
      // A deferred constraint or a busy file leaves the transaction open; a full disk may not.
      if (database.isTransaction) database.exec('rollback');
      options.onFailure(error instanceof Error ? error : new Error(String(error)));
    }
  };
  const beforeWrite = () => {
    if (open) return;
    database.exec('begin');
    open = true;
    setImmediate(commit);
  };
  return {
    prepare(sql) {
      const statement = database.prepare(sql);
      return {
        run: (...parameters) => {
          beforeWrite();
          return statement.run(...parameters);
        },
        get: (...parameters) => {
          beforeWrite();
          return statement.get(...parameters);
        },
      };
    },
    commit,
  };
}
