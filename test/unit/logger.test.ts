import { describe, expect, it } from 'vitest';
import { logConsoleOutput } from '../../src/observability/console-to-log.ts';
import { capturedLog } from '../helpers/captured-log.ts';

describe('log redaction', () => {
  it('blanks secret fields at the top level and inside the objects requests are logged with', () => {
    const { logger, lines } = capturedLog();
    logger.info(
      {
        code: 'wechat-code-1',
        client_secret: 'cs-1',
        query: { code: 'wechat-code-2', state: 'state-1', lang: 'zh' },
        body: { refresh_token: 'rt-1', grant_type: 'refresh_token' },
        req: { headers: { authorization: 'Bearer at-1', cookie: '_session=s-1', host: 'x' } },
        details: { session_key: 'sk-1' },
      },
      'a line',
    );
    const printed = JSON.stringify(lines);
    for (const secret of ['wechat-code-1', 'cs-1', 'wechat-code-2', 'state-1', 'rt-1', 'at-1', 's-1', 'sk-1'])
      expect(printed).not.toContain(secret);
    expect(lines[0]).toMatchObject({
      query: { code: '[redacted]', lang: 'zh' },
      body: { refresh_token: '[redacted]', grant_type: 'refresh_token' },
      req: { headers: { host: 'x' } },
    });
  });

  it('leaves a child logger with the same redaction', () => {
    const { logger, lines } = capturedLog();
    logger.child({ requestId: 'r-1' }).info({ access_token: 'at-2', path: '/me' }, 'request');
    expect(lines[0]).toMatchObject({ requestId: 'r-1', access_token: '[redacted]', path: '/me' });
  });
});

describe('logged errors', () => {
  it('keep class, message, code and stack of an error and its causes, and drop every other field', () => {
    const { logger, lines } = capturedLog();
    const inner = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
      // As ioredis hangs the command on its errors: a key that holds a token.
      command: { name: 'hgetall', args: ['wob:oidc:AccessToken:TOKEN-1'] },
    });
    const outer = Object.assign(new Error('could not save', { cause: inner }), {
      // As pg hangs the row and the statement's context on its errors.
      code: '23505',
      detail: 'Key (id)=(TOKEN-2) already exists.',
      where: "unnamed portal parameter $2 = 'TOKEN-3'",
      constraint: 'oidc_artifacts_pkey',
      body: 'refresh_token=TOKEN-4',
    });
    logger.error({ err: outer }, 'failed');
    expect(JSON.stringify(lines)).not.toMatch(/TOKEN-\d/);
    expect(lines[0]?.err).toMatchObject({
      type: 'Error',
      message: 'could not save',
      code: '23505',
      constraint: 'oidc_artifacts_pkey',
      stack: expect.stringContaining('could not save'),
      cause: {
        message: 'connect ECONNREFUSED 127.0.0.1:6379',
        code: 'ECONNREFUSED',
        errno: -111,
        syscall: 'connect',
      },
    });
  });

  it('keep a code only when it looks like one, not like a login code', () => {
    const { logger, lines } = capturedLog();
    logger.error({ err: Object.assign(new Error('x'), { code: '081Kq0Ga1GbwQF0Q4nHa1s5bYv3Kq0GQ' }) }, 'a');
    logger.error({ err: Object.assign(new Error('y'), { code: 'code_used' }) }, 'b');
    expect(lines[0]?.err).not.toHaveProperty('code');
    expect(lines[1]?.err).toMatchObject({ code: 'code_used' });
  });

  it('log what was thrown when it is not an Error', () => {
    const { logger, lines } = capturedLog();
    logger.error({ err: 'plain' }, 'thrown');
    expect(lines[0]?.err).toEqual({ type: 'string', message: 'plain' });
  });
});

describe("libraries' console output", () => {
  it('is a JSON line of the log at the level of the console method, marked source: console', () => {
    const { logger, lines } = capturedLog();
    const saved = { ...console };
    try {
      logConsoleOutput(logger);
      // oidc-provider's notice of its default CORS policy is a console.info; ioredis warns.
      console.info('oidc-provider NOTICE: default clientBasedCORS function called');
      console.warn('[WARN] Redis server does not require a password, but a password was supplied.');
      console.log('a %s line', 'formatted');
    } finally {
      Object.assign(console, saved);
    }
    expect(lines.map(({ level, source, msg }) => ({ level, source, msg }))).toEqual([
      {
        level: 'info',
        source: 'console',
        msg: 'oidc-provider NOTICE: default clientBasedCORS function called',
      },
      {
        level: 'warn',
        source: 'console',
        msg: '[WARN] Redis server does not require a password, but a password was supplied.',
      },
      { level: 'info', source: 'console', msg: 'a formatted line' },
    ]);
  });
});
