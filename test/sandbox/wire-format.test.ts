import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeWeChatJson } from '../../src/sandbox/wire.ts';
import { exchange, RID, startTestSandbox, type TestSandbox, tokensFor, WEBSITE } from './sandbox-fixture.ts';

describe('sandbox wire format (§1, §15)', () => {
  let sandbox: TestSandbox;
  beforeAll(async () => {
    sandbox = await startTestSandbox();
  });
  afterAll(() => sandbox.close());

  it('serves API answers as text/plain by default, as WeChat often does', async () => {
    const answer = await exchange(sandbox, WEBSITE, 'no-such-code');
    expect(answer.headers.get('content-type')).toBe('text/plain');
  });

  it('answers business errors with HTTP 200 and an errcode body', async () => {
    const answer = await exchange(sandbox, WEBSITE, 'no-such-code');
    expect(answer.status).toBe(200);
    expect(answer.json?.errcode).toBe(40029);
  });

  it('suffixes errmsg with a rid', async () => {
    const answer = await exchange(sandbox, WEBSITE, 'no-such-code');
    expect(answer.json?.errmsg).toMatch(/^invalid code, rid: /);
    expect(answer.json?.errmsg).toMatch(RID);
  });

  it('escapes every slash in JSON strings as \\/', async () => {
    const user = sandbox.state.listUsers().find((u) => u.nickname === '张三')!;
    const tokens = await tokensFor(sandbox, WEBSITE, user.id);
    const answer = await sandbox.get('/sns/userinfo', {
      access_token: tokens.access_token,
      openid: tokens.openid,
    });
    expect(answer.text).toContain('"headimgurl":"http:\\/\\/127.0.0.1:');
    expect(answer.text).not.toMatch(/[^\\]\//);
    expect(answer.json?.headimgurl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/sandbox\/avatars\/[^/]+\/132$/);
  });

  it('writes Chinese and emoji nicknames as raw UTF-8, not \\u escapes', async () => {
    const panda = sandbox.state.listUsers().find((u) => u.nickname === '🐼熊猫')!;
    const tokens = await tokensFor(sandbox, WEBSITE, panda.id);
    const response = await fetch(
      `${sandbox.url}/sns/userinfo?access_token=${tokens.access_token}&openid=${tokens.openid}`,
    );
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.includes(Buffer.from('"nickname":"🐼熊猫"', 'utf8'))).toBe(true);
    expect(bytes.toString('utf8')).not.toContain('\\u');
  });

  it('leaves errcode out of success bodies of the token endpoint', async () => {
    const tokens = await tokensFor(sandbox, WEBSITE);
    expect(tokens).not.toHaveProperty('errcode');
    expect(tokens).not.toHaveProperty('errmsg');
  });

  it('serialises like WeChat: slashes escaped inside nested strings, numbers as numbers', () => {
    expect(serializeWeChatJson({ a: 'x/y', list: ['/'], n: 7200 })).toBe(
      '{"a":"x\\/y","list":["\\/"],"n":7200}',
    );
  });
});

describe('sandbox wire format with contentType application/json', () => {
  it('serves API answers as application/json; charset=utf-8 when configured', async () => {
    const sandbox = await startTestSandbox({ contentType: 'application/json' });
    try {
      const answer = await exchange(sandbox, WEBSITE, 'no-such-code');
      expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(answer.json?.errcode).toBe(40029);
    } finally {
      await sandbox.close();
    }
  });
});
