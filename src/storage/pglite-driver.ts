import { type PGlite, parse, protocol } from '@electric-sql/pglite';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Driver,
  PGliteDialect,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

type BackendMessage = Parameters<typeof parse.parseResults>[0][number];

/** A statement parsed once under a name of its own, with what Describe told of it. */
interface PreparedStatement {
  name: string;
  /** The parameter types PostgreSQL inferred, which choose each value's serialiser. */
  parameterTypes: number[];
  /** The row description (or none, for a statement that returns no rows). */
  description: BackendMessage | undefined;
}

/**
 * Statements kept prepared at once. The bridge's queries are a few dozen fixed texts; the bound
 * is for texts that vary (a list of n values), whose oldest statements are closed.
 */
const MAX_PREPARED = 256;

/**
 * Kysely's PGlite dialect with a driver that keeps every statement prepared and runs each query
 * in one call into PGlite.
 *
 * PGlite's own `query` parses and plans the text again on every call, and makes six calls into
 * the WebAssembly Postgres for it (parse, describe, bind, describe, execute, sync), each awaited.
 * Here a statement is parsed, described and planned once under a name, and a query is then one
 * call: bind, execute, sync (see init for the plans). On 5 Dec a primary-key read through
 * kysely cost 0.21 ms of CPU with `query` and 0.14 ms here, and the embedded setup's logins
 * (about twenty statements each) were PGlite-bound.
 *
 * Values are serialised and rows parsed by PGlite's own type handlers, as `query` does, so the
 * results are the same. Kysely holds PGlite's one connection per query or transaction (the
 * adapter declares a single connection), so nothing else interleaves with a call here.
 */
export class PreparedPGliteDialect extends PGliteDialect {
  readonly #pglite: PGlite;

  constructor(pglite: PGlite) {
    super({ pglite });
    this.#pglite = pglite;
  }

  override createDriver(): Driver {
    return new PreparedPGliteDriver(this.#pglite);
  }
}

class PreparedPGliteDriver implements Driver {
  readonly pglite: PGlite;
  readonly #connection: PreparedPGliteConnection;

  constructor(pglite: PGlite) {
    this.pglite = pglite;
    this.#connection = new PreparedPGliteConnection(pglite);
  }

  async init(): Promise<void> {
    await this.pglite.waitReady;
    // Each statement is planned once, when first run, and that plan serves every execution after:
    // planning is most of a short statement's cost here (on 6 Dec a read by primary key took
    // 0.07 ms planned once against 0.14 planned each time, and the embedded login ran 1.8 times
    // as fast). A kept plan must not depend on the statistics it was made from: PGlite runs no
    // autovacuum, and those of an empty table (as at the start, or after a sweep emptied it) once
    // made the read by primary key a sequential scan costing 1.6 ms on a full table. So sequential
    // scans are priced out, and every statement uses an index wherever one serves it (every
    // statement of a login has one: test/storage/query-plans.test.ts checks these plans). A table
    // no index serves is still read whole. A sweep's VACUUM ANALYZE makes PostgreSQL plan again.
    await this.#connection.run('set plan_cache_mode = force_generic_plan');
    await this.#connection.run('set enable_seqscan = off');
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#connection;
  }

  async releaseConnection(): Promise<void> {}

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    await (connection as PreparedPGliteConnection).run(beginStatement(settings));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PreparedPGliteConnection).run('commit');
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PreparedPGliteConnection).run('rollback');
  }

  async destroy(): Promise<void> {
    if (!this.pglite.closed) await this.pglite.close();
  }
}

/** What kysely's PostgreSQL driver sends to open a transaction with these settings. */
function beginStatement(settings: TransactionSettings): string {
  if (!settings.isolationLevel && !settings.accessMode) return 'begin';
  let statement = 'start transaction';
  if (settings.isolationLevel) statement += ` isolation level ${settings.isolationLevel}`;
  if (settings.accessMode) statement += ` ${settings.accessMode}`;
  return statement;
}

class PreparedPGliteConnection implements DatabaseConnection {
  readonly #statements = new Map<string, PreparedStatement>();
  /** Statements evicted from the map, closed in front of the next call. */
  #closing: Uint8Array[] = [];
  #next = 0;
  readonly pglite: PGlite;

  constructor(pglite: PGlite) {
    this.pglite = pglite;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.#execute<R>(query);
    } catch (error) {
      if (!isStalePlan(error)) throw error;
      // A migration changed a table under a prepared statement: prepare it again, once.
      this.#forget(query.sql);
      return await this.#execute<R>(query);
    }
  }

  async #execute<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const statement = this.#statements.get(query.sql) ?? (await this.#prepare(query.sql));
    const values = query.parameters.map((value, index) =>
      this.#serialise(value, statement.parameterTypes[index]),
    );
    const messages = await this.#call([
      ...this.#takeClosing(),
      protocol.serialize.bind({ statement: statement.name, values }),
      protocol.serialize.execute({}),
      protocol.serialize.sync(),
    ]);
    const described = statement.description ? [statement.description, ...messages] : messages;
    const [result] = parse.parseResults(described, this.pglite.parsers);
    return {
      rows: (result?.rows ?? []) as R[],
      numAffectedRows: BigInt(result?.affectedRows ?? 0),
    };
  }

  streamQuery(): AsyncIterableIterator<never> {
    throw new Error('PGlite does not stream results');
  }

  /** A statement without parameters or results (transaction control), by the simple protocol. */
  async run(statement: string): Promise<void> {
    await this.#call([...this.#takeClosing(), protocol.serialize.query(statement)]);
  }

  async #prepare(text: string): Promise<PreparedStatement> {
    const name = `wob_${this.#next++}`;
    const messages = await this.#call([
      protocol.serialize.parse({ name, text }),
      protocol.serialize.describe({ type: 'S', name }),
      protocol.serialize.sync(),
    ]);
    const statement: PreparedStatement = {
      name,
      parameterTypes: parse.parseDescribeStatementResults(messages),
      description: messages.find((message) => message.name === 'rowDescription'),
    };
    this.#remember(text, statement);
    return statement;
  }

  #remember(text: string, statement: PreparedStatement): void {
    this.#statements.set(text, statement);
    if (this.#statements.size > MAX_PREPARED) this.#forget(this.#statements.keys().next().value as string);
  }

  #forget(text: string): void {
    const statement = this.#statements.get(text);
    if (!statement) return;
    this.#statements.delete(text);
    this.#closing.push(protocol.serialize.close({ type: 'S', name: statement.name }));
  }

  #takeClosing(): Uint8Array[] {
    const closing = this.#closing;
    this.#closing = [];
    return closing;
  }

  #serialise(value: unknown, type: number | undefined): string | null {
    if (value === null || value === undefined) return null;
    const serialiser = type === undefined ? undefined : this.pglite.serializers[type];
    return serialiser ? serialiser(value) : String(value);
  }

  /**
   * One call into PGlite: the messages go in together, and the first error PostgreSQL reports
   * is thrown (the sync at the end has already brought the session back to ready).
   */
  async #call(parts: Uint8Array[]): Promise<BackendMessage[]> {
    const { messages } = await this.pglite.execProtocol(concat(parts), { syncToFs: false });
    // As PGlite's query does: outside a transaction, what was written goes to the file system now.
    if (!this.pglite.isInTransaction()) await this.pglite.syncToFs();
    return messages;
  }
}

/** PostgreSQL's answer to a prepared statement whose table has changed shape since. */
function isStalePlan(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error as { code?: unknown }).code === '0A000' &&
    error.message.includes('cached plan must not change result type')
  );
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1 && parts[0]) return parts[0];
  let length = 0;
  for (const part of parts) length += part.length;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
