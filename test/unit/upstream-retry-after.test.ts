import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../src/upstream/wechat/types.ts';

describe('UpstreamError.retryAfterSeconds', () => {
  const at = (iso: string) => new Date(iso);

  it('waits out the minute for the per-minute quota (45011) and a few seconds for an outage', () => {
    expect(new UpstreamError('rate_limited', 'sns/jscode2session', 45011).retryAfterSeconds()).toBe(60);
    expect(new UpstreamError('unavailable', 'sns/jscode2session', -1).retryAfterSeconds()).toBe(5);
    expect(new UpstreamError('unavailable', 'sns/jscode2session').retryAfterSeconds()).toBe(5);
  });

  it('waits until midnight China time for the daily quota (45009)', () => {
    const daily = new UpstreamError('rate_limited', 'wxa/business/getuserphonenumber', 45009);
    // 15:00 UTC is 23:00 in China: an hour to go.
    expect(daily.retryAfterSeconds(at('2026-12-06T15:00:00Z'))).toBe(3600);
    // 16:00 UTC is midnight there: a whole day.
    expect(daily.retryAfterSeconds(at('2026-12-06T16:00:00Z'))).toBe(86_400);
    // Seconds before midnight: still a minute at least.
    expect(daily.retryAfterSeconds(at('2026-12-06T15:59:50Z'))).toBe(60);
  });

  it('gives no wait where waiting does not help', () => {
    expect(new UpstreamError('code_used', 'sns/jscode2session', 40163).retryAfterSeconds()).toBeUndefined();
    expect(
      new UpstreamError('app_config', 'cgi-bin/stable_token', 40125).retryAfterSeconds(),
    ).toBeUndefined();
  });
});
