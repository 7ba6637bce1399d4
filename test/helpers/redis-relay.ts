import { startTcpRelay, type TcpRelay } from '../production/tcp-relay.ts';
import { type Bridge, type BridgeOptions, startBridge } from './bridge.ts';
import { testRedisUrl } from './redis.ts';

/**
 * A bridge on PostgreSQL + Redis whose Redis connection goes through a relay the test can cut, hang
 * or make lose an answer: a fault between one instance and the shared Redis, which itself goes on.
 */
export async function bridgeBehindRedisRelay(
  options: Omit<BridgeOptions, 'storage'> = {},
): Promise<{ relay: TcpRelay; bridge: Bridge }> {
  const redis = new URL(testRedisUrl());
  const relay = await startTcpRelay({ host: redis.hostname, port: Number(redis.port || 6379) });
  const bridge = await startBridge({
    ...options,
    storage: 'postgres+redis',
    configure: (given) => {
      const config = options.configure ? options.configure(given) : given;
      const redisUrl = new URL(config.storage.redisUrl as string);
      redisUrl.hostname = '127.0.0.1';
      redisUrl.port = String(relay.port);
      return { ...config, storage: { ...config.storage, redisUrl: redisUrl.href } };
    },
  });
  return { relay, bridge };
}
