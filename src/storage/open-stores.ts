import type { DatabaseSync } from 'node:sqlite';
import { type Kysely, sql } from 'kysely';
import { connectionFailure, describeUrl } from './describe-url.ts';
import { migrateToLatest } from './migrate.ts';
import type { KeyValueStore, StorageKind, Stores } from './ports.ts';
import { createPostgresDatabase, QUERY_TIMEOUT_MS } from './postgres.ts';
import { privateDirectory } from './private-directory.ts';
import { connectRedis, evictingPolicy } from './redis/connect.ts';
import { createRedisKeyValueStore } from './redis/key-value.ts';
import { createRedisOidcAdapterFactory } from './redis/oidc-adapter.ts';
import type { RedisClient } from './redis/scripts.ts';
import type { Database } from './schema.ts';
import { createSqlKeyValueStore } from './sql/key-value.ts';
import { createSqlOidcAdapter } from './sql/oidc-adapter.ts';
import { embeddedAccountsFile, openAccountsDatabase } from './sqlite/accounts-database.ts';
import { openArtifactsDatabase } from './sqlite/database.ts';
import { scrubWal } from './sqlite/file.ts';
import { copyAccountsFromPglite } from './sqlite/from-pglite.ts';
import { createSqliteKeyValueStore } from './sqlite/key-value.ts';
import { onSqliteConnection } from './sqlite/kysely-dialect.ts';
import { createSqliteOidcAdapter } from './sqlite/oidc-adapter.ts';
import { createWriteBatch, type WriteBatch } from './sqlite/write-batch.ts';

export interface StoresLogger {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

export interface OpenStoresOptions {
  /** PostgreSQL URL; without it accounts live in a SQLite file under dataDir (accounts.sqlite). */
  databaseUrl?: string | undefined;
  /**
   * redis:// or rediss:// URL; without it artifacts and kv live in PostgreSQL (with a database URL)
   * or in SQLite under dataDir (embedded).
   */
  redisUrl?: string | undefined;
  redisKeyPrefix: string;
  dataDir: string;
  logger: StoresLogger;
  /**
   * Embedded only: a commit of the artifacts file failed (a full disk, an I/O error) and what it
   * held is rolled back; no request in flight may answer as if its writes were kept
   * (./sqlite/write-batch.ts). Without it the failure is thrown where the commit ran.
   */
  onCommitFailure?: (error: Error) => void;
}

/** How long a readiness probe waits before calling a store down. */
const PING_TIMEOUT_MS = 2_000;

/**
 * Opens every store the server needs and brings the schema up to date. URLs are logged
 * without credentials. On failure whatever was opened is closed again before rethrowing.
 */
export async function openStores(options: OpenStoresOptions): Promise<Stores> {
  const { logger } = options;
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // Accounts (and, without Redis, tokens) in files under the data directory: this user's alone.
    if (!options.databaseUrl) await privateDirectory(options.dataDir, logger);
    const embedded =
      options.databaseUrl || options.redisUrl ? undefined : await openArtifactsFile(options, cleanups);
    const { db, kind: accountsKind } = await openDatabase(options);
    cleanups.push(() => db.destroy());
    if (options.databaseUrl) {
      const applied = await migrate(options.databaseUrl, (newer) =>
        options.logger.warn(
          { newerMigrations: newer },
          'the database schema is from a later release: this one runs on it (migrations only add) and migrates nothing',
        ),
      );
      logger.info(
        { accounts: accountsKind, database: describeUrl(options.databaseUrl), migrationsApplied: applied },
        'database ready',
      );
    } else {
      // The embedded file's schema came up to date as it opened (./sqlite/file.ts).
      await copyAccountsFromPglite(options.dataDir, db, logger);
      logger.info(
        { accounts: accountsKind, database: embeddedAccountsFile(options.dataDir) },
        'database ready',
      );
    }

    const artifacts = options.redisUrl
      ? await openRedisArtifacts(options.redisUrl, options.redisKeyPrefix, logger, cleanups)
      : embedded
        ? openSqliteArtifacts(embedded.sqlite, embedded.writes, logger, cleanups)
        : openPostgresArtifacts(db, logger, cleanups);
    logger.info({ artifacts: artifacts.kind }, 'artifact store ready');

    const probeDatabase = () => probe(async () => void (await sql`select 1`.execute(db)));
    const probeCache = artifacts.ping ?? probeDatabase;
    let closing: Promise<void> | undefined;

    return {
      db,
      kv: artifacts.kv,
      oidcAdapter: artifacts.oidcAdapter,
      kinds: { accounts: accountsKind, artifacts: artifacts.kind },
      ...(artifacts.redis ? { redis: artifacts.redis } : {}),
      ...embedded,
      ...(accountsKind === 'embedded' ? { scrub: () => scrubFiles(db, embedded) } : {}),
      async ping() {
        const [database, cache] = await Promise.all([probeDatabase(), probeCache()]);
        return { database, cache };
      },
      close() {
        closing ??= closeAll(cleanups);
        return closing;
      },
    };
  } catch (error) {
    await closeAll(cleanups).catch(() => {});
    throw error;
  }
}

/**
 * The embedded files' write-ahead logs, truncated once what is pending is committed: the accounts
 * file's on its connection between transactions, the artifacts file's (when it is there too) after
 * its group commit.
 */
async function scrubFiles(
  db: Kysely<Database>,
  artifacts: { sqlite: DatabaseSync; writes: WriteBatch } | undefined,
): Promise<void> {
  await onSqliteConnection(db, scrubWal);
  if (!artifacts) return;
  artifacts.writes.commit();
  scrubWal(artifacts.sqlite);
}

/**
 * The migrations on a connection of their own, without the server's statement timeout: building an
 * index on a large table may take longer than any request should.
 */
async function migrate(databaseUrl: string, onNewerSchema: (names: string[]) => void): Promise<string[]> {
  const db = createPostgresDatabase(databaseUrl, { maxConnections: 1 });
  try {
    await checkPostgresConnection(db, databaseUrl);
    return await migrateToLatest(db, onNewerSchema);
  } finally {
    await db.destroy();
  }
}

/**
 * The database's first connection, on its own: a server that cannot be reached, a role or database
 * it does not know, a wrong password, were reported as "database migrations failed: connect
 * ECONNREFUSED ...", the migrations being only the first to use the connection, and the message
 * named neither the store nor the setting (an operator's review). Said as Redis's is, with the URL
 * described without credentials and only the error's message (pg's carry no password). The copy to
 * PostgreSQL (src/cli) checks its target the same way.
 */
export async function checkPostgresConnection(db: Kysely<Database>, databaseUrl: string): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    throw new Error(
      `cannot connect to PostgreSQL at ${describeUrl(databaseUrl)} (DATABASE_URL or storage.databaseUrl)`,
      { cause: connectionFailure(error) },
    );
  }
}

async function openDatabase(
  options: OpenStoresOptions,
): Promise<{ db: Kysely<Database>; kind: Extract<StorageKind, 'postgres' | 'embedded'> }> {
  if (options.databaseUrl) {
    const db = createPostgresDatabase(options.databaseUrl, {
      onIdleError: (error) => options.logger.warn({ error: error.message }, 'PostgreSQL connection lost'),
      queryTimeoutMs: QUERY_TIMEOUT_MS,
    });
    return { db, kind: 'postgres' };
  }
  return { db: await openAccountsDatabase(options.dataDir), kind: 'embedded' };
}

interface Artifacts {
  kind: StorageKind;
  kv: KeyValueStore;
  oidcAdapter: Stores['oidcAdapter'];
  /** Absent: artifacts live in the database, whose probe covers them. */
  ping?: () => Promise<boolean>;
  redis?: RedisClient;
}

async function openRedisArtifacts(
  url: string,
  prefix: string,
  logger: StoresLogger,
  cleanups: (() => Promise<void>)[],
): Promise<Artifacts> {
  // Errors before the first connection end up in connectRedis's rejection instead.
  let healthy = false;
  const redis = await connectRedis(url, {
    onError(error) {
      // ioredis reports every failed reconnect attempt: log once per outage.
      if (!healthy) return;
      healthy = false;
      logger.warn({ error: error.message, redis: describeUrl(url) }, 'Redis connection lost');
    },
  });
  healthy = true;
  const marker = `${prefix}${DEPLOYMENT_MARKER}`;
  redis.on('ready', () => {
    if (healthy) return;
    healthy = true;
    logger.info({ redis: describeUrl(url) }, 'Redis connection restored');
    void reportIfEmptied(redis, marker, () =>
      logger.warn(
        { redis: describeUrl(url) },
        'Redis came back without its data (restarted empty, or a failover to a replica that had not caught up): every session, grant and token is gone, people log in again, and the used refresh tokens kept to detect their reuse are forgotten',
      ),
    );
  });
  cleanups.push(() => quit(redis));
  await redis.set(marker, new Date().toISOString(), 'NX');
  logger.info({ redis: describeUrl(url), prefix }, 'Redis connected');
  const policy = await evictingPolicy(redis);
  if (policy) {
    logger.warn(
      { redis: describeUrl(url), maxmemoryPolicy: policy },
      'Redis may evict keys (set maxmemory-policy noeviction): an evicted session logs a person out, an evicted used refresh token is accepted again',
    );
  }
  return {
    kind: 'redis',
    kv: createRedisKeyValueStore(redis, { prefix }),
    oidcAdapter: createRedisOidcAdapterFactory(redis, { prefix }),
    ping: () => probe(async () => void (await redis.ping())),
    redis,
  };
}

/**
 * A key of the deployment's own in Redis, without a TTL, set by the first instance to start: when
 * a reconnection finds it gone, the data went with it, which nothing else said (the log showed the
 * connection restored, then refresh tokens "not found": an operator's review). Of the instances
 * that reconnect, the one whose SET NX puts it back says so: one line per deployment.
 */
const DEPLOYMENT_MARKER = 'deployment';

async function reportIfEmptied(redis: RedisClient, marker: string, report: () => void): Promise<void> {
  try {
    if ((await redis.set(marker, new Date().toISOString(), 'NX')) === 'OK') report();
  } catch {
    // Lost again at once: the next reconnection asks.
  }
}

/** Artifacts in the accounts' PostgreSQL database (a DATABASE_URL without a REDIS_URL). */
function openPostgresArtifacts(
  db: Kysely<Database>,
  logger: StoresLogger,
  cleanups: (() => Promise<void>)[],
): Artifacts {
  const sweeping = { onSweepError: warnOnError(logger, 'expired-row sweep failed') };
  const adapter = createSqlOidcAdapter(db, sweeping);
  const kv = createSqlKeyValueStore(db, sweeping);
  stopSweepersAtClose(cleanups, adapter, kv);
  return { kind: 'postgres', kv, oidcAdapter: adapter.factory };
}

/**
 * The embedded setup's artifacts file and its group commit (./sqlite/write-batch.ts), whose last
 * writes are committed before the file closes.
 */
async function openArtifactsFile(
  options: OpenStoresOptions,
  cleanups: (() => Promise<void>)[],
): Promise<{ sqlite: DatabaseSync; writes: WriteBatch }> {
  const sqlite = await openArtifactsDatabase(options.dataDir);
  const writes = createWriteBatch(sqlite, { onFailure: options.onCommitFailure ?? rethrow });
  cleanups.push(async () => {
    writes.commit();
    sqlite.close();
  });
  return { sqlite, writes };
}

/** The embedded setup's artifacts: a SQLite file of their own beside the accounts' (./sqlite/database.ts). */
function openSqliteArtifacts(
  database: DatabaseSync,
  writes: WriteBatch,
  logger: StoresLogger,
  cleanups: (() => Promise<void>)[],
): Artifacts {
  const sweeping = { onSweepError: warnOnError(logger, 'expired-row sweep failed') };
  const adapter = createSqliteOidcAdapter(database, writes, sweeping);
  const kv = createSqliteKeyValueStore(database, writes, sweeping);
  stopSweepersAtClose(cleanups, adapter, kv);
  return {
    kind: 'embedded',
    kv,
    oidcAdapter: adapter.factory,
    // Throws once the file is closed: the probe then answers false.
    ping: () => probe(async () => void database.prepare('select 1').get()),
  };
}

/** Stops the stores' sweepers before the database they sweep closes under them (cleanups run in reverse). */
function stopSweepersAtClose(cleanups: (() => Promise<void>)[], ...stores: { close(): void }[]): void {
  cleanups.push(async () => {
    for (const store of stores) store.close();
  });
}

/** A background task's failure, logged as a warning: it is tried again at its next interval. */
function warnOnError(logger: StoresLogger, message: string): (error: unknown) => void {
  return (error) => logger.warn({ error: error instanceof Error ? error.message : String(error) }, message);
}

/** Resolves true when `check` succeeds within PING_TIMEOUT_MS; never rejects. */
async function probe(check: () => Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      check().then(
        () => true,
        () => false,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function quit(redis: RedisClient): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/** Closes in reverse order of opening; every cleanup runs even when one fails. */
async function closeAll(cleanups: (() => Promise<void>)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const cleanup of [...cleanups].reverse()) {
    try {
      await cleanup();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, 'closing the stores failed');
}

function rethrow(error: Error): never {
  throw error;
}
