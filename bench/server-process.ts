import { pino } from 'pino';
import { createLogger } from '../src/observability/logger.ts';
import { startServer } from '../src/server.ts';
import { startBareEngine } from './bare-engine.ts';
import { bridgeConfig } from './bridge-config.ts';
import { namePeers, serveParent } from './child-ipc.ts';
import type { ServerSpec } from './spec.ts';

/**
 * One benchmarked server in its own process (pinned by the parent): the bridge or the bare engine,
 * as the parent's `start` message says. It reports its own CPU time and memory when asked.
 */
let close: () => Promise<void> = async () => {};
const parent = serveParent({ stop: () => close(), handlers: { start } });

async function start(message: Record<string, unknown>): Promise<Record<string, unknown>> {
  const spec = message.spec as ServerSpec;
  namePeers(peerPorts(spec));
  if (spec.engine === 'bare') {
    const bare = await startBareEngine(spec);
    close = bare.close;
    return { url: bare.url };
  }
  const destination = pino.destination({ dest: spec.logFile, sync: true });
  const logger = createLogger({
    level: 'info',
    destination: destination as unknown as NodeJS.WritableStream,
  });
  const server = await startServer(bridgeConfig(spec), {
    logger,
    ...(spec.storeProbeMs !== undefined && { dependencyProbeMs: spec.storeProbeMs }),
  });
  close = async () => {
    await server.close();
    destination.flushSync();
  };
  return { url: server.url };
}

parent.ready({});

/** The census's names for the ports this server talks to (see child-ipc.ts). */
function peerPorts(spec: ServerSpec): Record<string, string> {
  const names: Record<string, string> = {};
  const name = (url: string | undefined, label: string, defaultPort: string) => {
    if (url) names[new URL(url).port || defaultPort] = label;
  };
  name(spec.redisUrl, 'Redis', '6379');
  name(spec.databaseUrl, 'PostgreSQL', '5432');
  if (spec.engine === 'bridge') name(spec.sandboxUrl, 'WeChat (the sandbox)', '80');
  return names;
}
