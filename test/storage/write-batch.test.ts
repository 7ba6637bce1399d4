import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { DatabaseSync } from 'node:sqlite';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type AnswerGate, gatedServerOptions } from '../../src/http/committed-answers.ts';
import { createSqliteKeyValueStore } from '../../src/storage/sqlite/key-value.ts';
import { createWriteBatch } from '../../src/storage/sqlite/write-batch.ts';
import { type Bridge, RP, startBridge } from '../helpers/bridge.ts';
import { relyingParty } from '../helpers/flow.ts';
import { openSqliteBackend, type SqliteBackend } from './backends.ts';

const count = (database: DatabaseSync, key: string) =>
  (database.prepare('select count(*) as n from kv_entries where key = ?').get(key) as { n: number }).n;

/**
 * A commit that fails for real: a row whose insert (by a trigger) breaks a deferred foreign key,
 * which SQLite checks only at commit. `when` (SQL on `new`) picks the rows that doom their transaction.
 */
function doomCommitsOf(database: DatabaseSync, table: 'kv_entries' | 'oidc_artifacts', when: string): void {
  database.exec(`create table doom_parent (id text primary key);
    create table doom_child (parent text references doom_parent (id) deferrable initially deferred);
    create trigger doom after insert on ${table} when ${when}
      begin insert into doom_child values ('nobody'); end;`);
}

function undoom(database: DatabaseSync): void {
  database.exec('drop trigger doom; drop table doom_child; drop table doom_parent;');
}

describe('the embedded artifacts file commits in groups (src/storage/sqlite/write-batch.ts)', () => {
  let backend: SqliteBackend;
  beforeAll(async () => {
    backend = await openSqliteBackend();
  });
  afterAll(async () => {
    await backend?.close();
  });

  it('joins the writes of one turn in one transaction, committed at the next turn and kept', async () => {
    const kv = createSqliteKeyValueStore(backend.database, backend.writes, { sweepIntervalMs: 0 });
    await kv.put('turn:a', 1, 60);
    await kv.put('turn:b', 2, 60);
    expect(backend.database.isTransaction).toBe(true);
    await nextTurn();
    expect(backend.database.isTransaction).toBe(false);
    await backend.reopen();
    const reopened = createSqliteKeyValueStore(backend.database, backend.writes, { sweepIntervalMs: 0 });
    expect([await reopened.get('turn:a'), await reopened.get('turn:b')]).toEqual([1, 2]);
  });

  it('commits what an answer follows before the answer’s head is written', async () => {
    const kv = createSqliteKeyValueStore(backend.database, backend.writes, { sweepIntervalMs: 0 });
    const gate: AnswerGate = { writes: backend.writes };
    const seen: boolean[] = [];
    const server = createServer(gatedServerOptions(gate), async (_req, res) => {
      await kv.put('answered', true, 60);
      seen.push(backend.database.isTransaction);
      res.end('written');
      seen.push(backend.database.isTransaction);
    });
    const url = await listen(server);
    onTestFinished(() => void server.close());
    expect(await (await fetch(url)).text()).toBe('written');
    // Open while the handler wrote; committed by the time its answer began.
    expect(seen).toEqual([true, false]);
  });

  it('rolls a failed commit back, reports it, and commits the writes after it', async () => {
    const failures: Error[] = [];
    const writes = createWriteBatch(backend.database, { onFailure: (error) => failures.push(error) });
    const kv = createSqliteKeyValueStore(backend.database, writes, { sweepIntervalMs: 0 });
    doomCommitsOf(backend.database, 'kv_entries', "new.key like 'doomed:%'");
    onTestFinished(() => undoom(backend.database));

    await kv.put('beside-the-doomed', 1, 60);
    await kv.put('doomed:1', 1, 60);
    writes.commit();
    expect(failures.map((error) => error.message)).toEqual(['FOREIGN KEY constraint failed']);
    expect(backend.database.isTransaction).toBe(false);
    // The whole transaction is gone, the entry written beside the doomed one too.
    expect([count(backend.database, 'beside-the-doomed'), count(backend.database, 'doomed:1')]).toEqual([
      0, 0,
    ]);

    await kv.put('after', 2, 60);
    await nextTurn();
    expect(failures).toHaveLength(1);
    expect(await kv.get('after')).toBe(2);
    expect(backend.database.isTransaction).toBe(false);
  });
});

describe('a failed commit in a running embedded server', () => {
  let bridge: Bridge;
  beforeAll(async () => {
    bridge = await startBridge({ storage: 'embedded' });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('answers no request then in flight, logs why, and goes on serving', async () => {
    const database = bridge.server.stores.sqlite as DatabaseSync;
    const rp = await relyingParty(bridge);
    const authorization = oidc.buildAuthorizationUrl(rp, {
      redirect_uri: RP.redirect_uris[0] as string,
      scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    // A request in flight: its head sent, its body not yet.
    const inFlight = connect(Number(new URL(bridge.instanceUrl).port), '127.0.0.1');
    await new Promise((resolve) => inFlight.once('connect', resolve));
    inFlight.write(
      'POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=',
    );
    const inFlightClosed = new Promise<string>((resolve) => {
      let received = '';
      // Closed with its body unread, the connection may end in a reset.
      inFlight.on('error', () => {});
      inFlight.on('data', (chunk) => {
        received += String(chunk);
      });
      inFlight.once('close', () => resolve(received));
    });

    // Every authorization request saves an interaction: this one's commit fails.
    doomCommitsOf(database, 'oidc_artifacts', "new.model = 'Interaction'");
    await expect(fetch(authorization, { redirect: 'manual' })).rejects.toThrow();
    expect(await inFlightClosed).toBe('');
    expect(bridge.logs.some((line) => line.includes('the embedded store could not commit'))).toBe(true);
    expect(
      database.prepare("select count(*) as n from oidc_artifacts where model = 'Interaction'").get(),
    ).toEqual({
      n: 0,
    });

    undoom(database);
    const again = await fetch(authorization, { redirect: 'manual' });
    expect(again.status).toBe(200);
    expect((await fetch(`${bridge.url}/readyz`)).status).toBe(200);
  });
});

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
    });
  });
}
