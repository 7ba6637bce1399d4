import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../src/config/types.ts';
import { type Bridge, startAnotherInstance, startBridge } from '../helpers/bridge.ts';

export interface Served {
  method: string;
  path: string;
  /** Index of the instance that answered. */
  instance: number;
}

export interface LoadBalancer {
  /** The public address: the issuer every instance is configured with. */
  url: string;
  /** Instance addresses, set once they run (they need the balancer's address first). */
  targets: string[];
  /** Which instance answers each request; round-robin unless replaced. */
  pick: (method: string, path: string) => number;
  /** Awaited before a request is forwarded: lets a test hold a request in flight. */
  before: (method: string, path: string) => Promise<void> | undefined;
  /** The bodies of every answer, in order (for tests that look for secrets the upstream handed out). */
  answers: string[];
  /** Every request forwarded, in order, with the instance that answered it. */
  served: Served[];
  close(): Promise<void>;
}

/**
 * A loopback reverse proxy for scale-out tests, standing in for the load balancer in front of the
 * instances: it keeps the Host header (so the instances see the issuer's host) and no affinity.
 */
export async function startLoadBalancer(): Promise<LoadBalancer> {
  let turn = 0;
  const lb: LoadBalancer = {
    url: '',
    targets: [],
    pick: () => turn++ % lb.targets.length,
    before: () => undefined,
    served: [],
    answers: [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = createServer(async (req, res) => {
    const path = req.url ?? '/';
    await lb.before(req.method ?? 'GET', path);
    const instance = lb.pick(req.method ?? 'GET', path);
    const target = new URL(lb.targets[instance] as string);
    lb.served.push({ method: req.method ?? 'GET', path: path.split('?')[0] as string, instance });
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => lb.answers.push(Buffer.concat(chunks).toString()));
        // An instance killed in the middle of its answer: cut the client's connection too, as a real
        // balancer does (pipe() does not pass the error on, and the client would wait forever).
        answer.on('error', () => res.destroy());
        answer.pipe(res);
      },
    );
    // A real balancer gives up on an instance that stopped answering (killed mid-request).
    upstream.setTimeout(10_000, () => upstream.destroy(new Error('upstream timeout')));
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  lb.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = server.close.bind(server);
  lb.close = () =>
    new Promise((resolve) => {
      close(() => resolve());
      server.closeAllConnections();
    });
  return lb;
}

/** Two bridge instances on one PostgreSQL and Redis behind a balancer that is their issuer. */
export interface BalancedPair {
  lb: LoadBalancer;
  first: Bridge;
  second: Bridge;
  /** Sends every request to instance 0 or 1 until told otherwise. */
  pin(instance: number): void;
  close(): Promise<void>;
}

export async function startBalancedPair(
  options: { configure?: (config: Config) => Config } = {},
): Promise<BalancedPair> {
  const lb = await startLoadBalancer();
  const configure = options.configure ?? ((config: Config) => config);
  const first = await startBridge({
    storage: 'postgres+redis',
    configure: (config) => configure({ ...config, issuer: lb.url }),
  });
  const second = await startAnotherInstance(first);
  lb.targets = [first.instanceUrl, second.instanceUrl];
  return {
    lb,
    first,
    second,
    pin(instance) {
      lb.pick = () => instance;
    },
    async close() {
      await lb.close();
      await second.close();
      await first.close();
    },
  };
}
