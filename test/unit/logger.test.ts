import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.ts';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

describe('log redaction', () => {
  it('blanks secret fields at the top level and inside the objects requests are logged with', () => {
    const { logger, lines } = capture();
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
    const { logger, lines } = capture();
    logger.child({ requestId: 'r-1' }).info({ access_token: 'at-2', path: '/me' }, 'request');
    expect(lines[0]).toMatchObject({ requestId: 'r-1', access_token: '[redacted]', path: '/me' });
  });
});
