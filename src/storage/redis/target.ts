/**
 * What a Redis URL names: one server, a Redis Cluster, or a master found through Sentinel. One
 * URL keeps REDIS_URL the single setting it is for one server:
 *
 *   redis://[user:password@]host:6379[/db]                 one server (rediss:// with TLS)
 *   redis+cluster://[user:password@]host1:7000,host2:7001  a cluster, from any of its nodes
 *   redis+sentinel://[user:password@]host1:26379,host2:26379/<master>[/db][?sentinelPassword=…]
 *
 * (rediss+cluster://, rediss+sentinel:// with TLS.) The user and password are the data nodes';
 * sentinels are asked without one unless `sentinelUsername` / `sentinelPassword` are given, as
 * Sentinel's own `requirepass` is separate from the master's.
 */
export type RedisTarget =
  | { mode: 'server'; url: string }
  | ({ mode: 'cluster'; nodes: HostPort[] } & Credentials)
  | ({
      mode: 'sentinel';
      sentinels: HostPort[];
      masterName: string;
      db: number;
      sentinelUsername?: string;
      sentinelPassword?: string;
    } & Credentials);

export interface HostPort {
  host: string;
  port: number;
}

interface Credentials {
  tls: boolean;
  username?: string;
  password?: string;
}

/** Parses a Redis URL of any of the forms above; throws with a message that never repeats it. */
export function parseRedisTarget(url: string): RedisTarget {
  // The user info runs to the last @ before the path, as in any URL.
  const match =
    /^(rediss?)(?:\+(cluster|sentinel))?:\/\/(?:([^/?#]*)@)?([^/?#@]*)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(url);
  if (!match) {
    throw new Error(
      'must be a redis://, rediss://, redis+cluster:// or redis+sentinel:// URL (rediss+… with TLS)',
    );
  }
  const [, scheme, mode, userinfo, hostList = '', path = '', query = ''] = match;
  if (!mode) {
    // ioredis would only fail at connect, with "Invalid URL" and no word of which setting.
    if (!URL.canParse(url) || !/^[^:]*(:\d{1,5})?$|^\[[^\]]+\](:\d{1,5})?$/.test(hostList))
      throw new Error('must be a URL with a host and an optional numeric port');
    // A database number or nothing: another path failed only at the start's SELECT, after
    // check-config had passed it.
    if (!/^(\/\d*)?$/.test(path)) throw new Error('a redis:// path is a database number: /<db>');
    return { mode: 'server', url };
  }
  const credentials = { tls: scheme === 'rediss', ...parseUserinfo(userinfo) };
  const hosts = parseHosts(hostList, mode === 'cluster' ? 6379 : 26379);
  const params = new URLSearchParams(query);
  refuseUnknownParameters(params, mode === 'cluster' ? [] : SENTINEL_PARAMETERS);
  if (mode === 'cluster') {
    if (path !== '' && path !== '/')
      throw new Error('a redis+cluster:// URL takes no path (a cluster has one database)');
    return { mode: 'cluster', nodes: hosts, ...credentials };
  }
  const [masterName = '', db = '0', ...rest] = path.split('/').slice(1);
  if (!masterName) throw new Error('a redis+sentinel:// URL needs the master name as its path: /<master>');
  if (rest.length > 0 || !/^\d+$/.test(db))
    throw new Error('a redis+sentinel:// path is /<master> or /<master>/<db>');
  return {
    mode: 'sentinel',
    sentinels: hosts,
    masterName: decodeURIComponent(masterName),
    db: Number(db),
    ...credentials,
    ...optional('sentinelUsername', params.get('sentinelUsername')),
    ...optional('sentinelPassword', params.get('sentinelPassword')),
  };
}

const SENTINEL_PARAMETERS = ['sentinelUsername', 'sentinelPassword'];

/**
 * A misspelt `sentinelPasword`, or a `?password=` that ioredis would read on a one-server URL,
 * would otherwise be dropped without a word and the connection fail later as unauthenticated.
 * Only the name is repeated: a value may be a password.
 */
function refuseUnknownParameters(params: URLSearchParams, known: readonly string[]): void {
  for (const name of params.keys()) {
    if (known.includes(name)) continue;
    const accepted = known.length === 0 ? 'none' : known.join(', ');
    throw new Error(
      `unknown URL parameter "${name}" (this form takes ${accepted}; credentials go before the @)`,
    );
  }
}

/** At least one: an empty list is one empty entry, refused like any other malformed one. */
function parseHosts(list: string, defaultPort: number): HostPort[] {
  return list.split(',').map((entry) => {
    const found = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    if (!found) throw new Error('every host must be host or host:port, separated by commas');
    const [, host = '', port] = found;
    const number = port === undefined ? defaultPort : Number(port);
    if (number < 1 || number > 65_535) throw new Error('a port must be between 1 and 65535');
    return { host: host.replace(/^\[|\]$/g, ''), port: number };
  });
}

function parseUserinfo(userinfo: string | undefined): { username?: string; password?: string } {
  if (!userinfo) return {};
  const colon = userinfo.indexOf(':');
  const username = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(0, colon));
  const password = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  // redis://:password@host is the usual form for a server without ACL users.
  return { ...optional('username', username || null), ...optional('password', password ?? null) };
}

function optional<K extends string>(key: K, value: string | null): { [P in K]?: string } {
  return (value === null ? {} : { [key]: value }) as { [P in K]?: string };
}

/** A cluster or Sentinel target without credentials, for logs and error messages. */
export function describeRedisTarget(target: Exclude<RedisTarget, { mode: 'server' }>): string {
  const scheme = `${target.tls ? 'rediss' : 'redis'}+${target.mode}`;
  const hosts = (target.mode === 'cluster' ? target.nodes : target.sentinels)
    .map(({ host, port }) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`))
    .join(',');
  return target.mode === 'cluster'
    ? `${scheme}://${hosts}`
    : `${scheme}://${hosts}/${target.masterName}${target.db ? `/${target.db}` : ''}`;
}
