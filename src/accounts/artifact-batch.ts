import type { Insertable, Kysely } from 'kysely';
import type { Logger } from '../observability/logger.ts';
import type { AccountArtifactsTable, Database } from '../storage/schema.ts';

export type IndexRow = Insertable<AccountArtifactsTable>;

/**
 * How long a saved grant or session waits for others to share its INSERT, milliseconds. At 10 ms a
 * busy instance still wrote about one statement per login (a third of a millisecond of its CPU);
 * at 50 ms a statement carries several logins' rows.
 */
const FLUSH_DELAY_MS = 50;
/**
 * How late a row another process handed over may reach the table: its batching delay, and time for
 * the INSERT itself on a busy database. A reader that must not miss another instance's rows (an
 * account deletion) reads again after this long.
 */
export const INDEX_SETTLE_MS = FLUSH_DELAY_MS + 200;
/** Rows per statement at most (a burst larger than this is written in several). */
const MAX_ROWS = 500;

/**
 * Writes account_artifacts rows in batches. Every login saves a session and a grant, and each
 * save used to be its own INSERT: after the account statement, the largest database cost of a
 * login. Rows now wait a few milliseconds and go out together in one multi-row INSERT, and a row
 * saved again meanwhile (oidc-provider saves a session more than once) is written once.
 *
 * The rows were always written after the fact (oidc-provider's saved events do not wait for
 * listeners), so a process dying in the window loses them as it did before; readers in this
 * process (the account page, deletion) flush first, so they never miss a row written here. Readers
 * elsewhere (another instance, the delete-account command) see a row up to the delay late.
 */
class IndexWriter {
  readonly #db: Kysely<Database>;
  readonly #logger: Logger;
  #pending = new Map<string, IndexRow>();
  /** Rows taken from #pending whose INSERT has not finished: not in the table yet either. */
  readonly #writing = new Set<IndexRow[]>();
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> = Promise.resolve();

  constructor(db: Kysely<Database>, logger: Logger) {
    this.#db = db;
    this.#logger = logger;
  }

  add(row: IndexRow): void {
    this.#pending.set(`${row.model}:${row.id}`, row);
    this.#timer ??= setTimeout(() => void this.flush(), FLUSH_DELAY_MS);
  }

  /** A destroyed artifact that may not be written yet: it never will be. */
  drop(model: string, id: string): void {
    this.#pending.delete(`${model}:${id}`);
  }

  /** Writes what is pending; resolves when every row handed over so far is written (or failed). */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const rows = [...this.#pending.values()];
    this.#pending = new Map();
    this.#writing.add(rows);
    const previous = this.#inFlight;
    this.#inFlight = (async () => {
      try {
        await previous;
        for (let i = 0; i < rows.length; i += MAX_ROWS) await this.#write(rows.slice(i, i + MAX_ROWS));
      } finally {
        this.#writing.delete(rows);
      }
    })();
    return this.#inFlight;
  }

  /** Every row handed over and not written yet: waiting, or in an INSERT that has not finished. */
  unwritten(): IndexRow[] {
    return [...this.#pending.values(), ...[...this.#writing].flat()];
  }

  async #write(rows: IndexRow[]): Promise<void> {
    try {
      await this.#db
        .insertInto('account_artifacts')
        .values(rows)
        .onConflict((oc) =>
          oc.columns(['model', 'id']).doUpdateSet((eb) => ({ expires_at: eb.ref('excluded.expires_at') })),
        )
        .execute();
    } catch (err) {
      this.#logger.error({ err, rows: rows.length }, 'could not index oidc artifacts');
    }
  }
}

// One writer per database handle, so that readers given only the handle can flush it.
const writers = new WeakMap<Kysely<Database>, IndexWriter>();

export function indexWriter(db: Kysely<Database>, logger: Logger): IndexWriter {
  let writer = writers.get(db);
  if (!writer) {
    writer = new IndexWriter(db, logger);
    writers.set(db, writer);
  }
  return writer;
}

/** Before reading the index: rows this process handed over are written. */
export async function flushIndexWrites(db: Kysely<Database>): Promise<void> {
  await writers.get(db)?.flush();
}

/**
 * The rows this process has handed over and not written yet, for a reader that cannot flush: one
 * inside a transaction, which on SQLite holds the connection the flush would wait for. A row stays
 * here until its INSERT has finished, so one not found here is in the table (read this first).
 */
export function unwrittenIndexRows(db: Kysely<Database>): readonly IndexRow[] {
  return writers.get(db)?.unwritten() ?? [];
}
