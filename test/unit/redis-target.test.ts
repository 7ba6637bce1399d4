import { describe, expect, it } from 'vitest';
import { describeUrl } from '../../src/storage/describe-url.ts';
import { clusterOptions } from '../../src/storage/redis/connect.ts';
import { parseRedisTarget } from '../../src/storage/redis/target.ts';

describe('parseRedisTarget', () => {
  it.each(['redis://127.0.0.1:6379', 'rediss://:pw@cache.internal:6380/2', 'redis://user:p%40ss@host/0'])(
    'hands a single-server URL %s to ioredis as it is',
    (url) => {
      expect(parseRedisTarget(url)).toEqual({ mode: 'server', url });
    },
  );

  it('reads a cluster URL: every seed node, default port 6379, credentials, TLS', () => {
    expect(parseRedisTarget('rediss+cluster://app:s%3Acret@a.internal:7000,b.internal,[::1]:7002')).toEqual({
      mode: 'cluster',
      nodes: [
        { host: 'a.internal', port: 7000 },
        { host: 'b.internal', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      tls: true,
      username: 'app',
      password: 's:cret',
    });
  });

  it('reads a Sentinel URL: sentinels (default port 26379), master name, database, sentinel password', () => {
    expect(
      parseRedisTarget('redis+sentinel://:master-pw@s1:26380,s2/my%20master/3?sentinelPassword=s-pw'),
    ).toEqual({
      mode: 'sentinel',
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
      ],
      masterName: 'my master',
      db: 3,
      tls: false,
      password: 'master-pw',
      sentinelPassword: 's-pw',
    });
    expect(parseRedisTarget('redis+sentinel://s1/mymaster')).toMatchObject({ db: 0, masterName: 'mymaster' });
  });

  it.each([
    [
      'http://:secret-pw@host',
      /must be a redis:\/\/, rediss:\/\/, redis\+cluster:\/\/ or redis\+sentinel:\/\//,
    ],
    ['redis+sentinel://:secret-pw@s1:26379', /needs the master name/],
    ['redis+sentinel://:secret-pw@s1/master/db', /\/<master> or \/<master>\/<db>/],
    ['redis+cluster://:secret-pw@a:7000/1', /takes no path/],
    ['redis+cluster://:secret-pw@a:7000,,b:7001', /host or host:port/],
    ['redis+cluster://:secret-pw@a:70000', /between 1 and 65535/],
    ['redis+cluster://:secret-pw@', /host or host:port/],
    ['redis://:secret-pw@cache.internal:notaport', /a host and an optional numeric port/],
    ['redis://:secret-pw@cache internal:6379', /a host and an optional numeric port/],
    ['redis://:secret-pw@cache.internal:6379/abc', /a redis:\/\/ path is a database number/],
    ['redis://:secret-pw@cache.internal:6379/1/2', /a redis:\/\/ path is a database number/],
    ['redis+cluster://a:7000?password=secret-pw', /unknown URL parameter "password" \(this form takes none;/],
    [
      'redis+sentinel://s1/m?sentinelPasword=secret-pw',
      /unknown URL parameter "sentinelPasword" \(this form takes sentinelUsername, sentinelPassword;/,
    ],
  ])('refuses %s with a message that does not repeat it', (url, message) => {
    let thrown: unknown;
    try {
      parseRedisTarget(url);
    } catch (error) {
      thrown = error;
    }
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain('secret-pw');
  });
});

describe('describeUrl of cluster and Sentinel URLs', () => {
  it('keeps the hosts, master and database, never credentials or query', () => {
    expect(describeUrl('rediss+cluster://app:pw@a:7000,[::1]:7001')).toBe(
      'rediss+cluster://a:7000,[::1]:7001',
    );
    expect(describeUrl('redis+sentinel://:pw@s1,s2:26380/mymaster/2?sentinelPassword=spw')).toBe(
      'redis+sentinel://s1:26379,s2:26380/mymaster/2',
    );
    expect(describeUrl('redis+cluster://:pw@')).toBe('[unparsable URL]');
  });
});

describe('clusterOptions', () => {
  it('with TLS keeps host names for the socket, so certificates issued for them match', () => {
    const lookup = clusterOptions({ tls: true }, { tls: {} }).dnsLookup;
    let resolved: unknown;
    lookup?.('cache-0001.example.internal', (error, address) => {
      resolved = error ?? address;
    });
    expect(resolved).toBe('cache-0001.example.internal');
  });

  it('without TLS leaves resolving to ioredis', () => {
    expect(clusterOptions({ tls: false }, {}).dnsLookup).toBeUndefined();
  });
});
