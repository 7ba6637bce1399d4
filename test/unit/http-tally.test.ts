import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import { HttpTally } from '../../src/observability/http-tally.ts';

/** Requests of several routes, methods and statuses, with durations on, between and past the bucket bounds. */
const REQUESTS: Array<[string, string, number, number]> = [
  ['/me', 'GET', 200, 0.0004],
  ['/me', 'GET', 200, 0.005],
  ['/me', 'GET', 401, 0.0051],
  ['/me', 'POST', 200, 0.3],
  ['/token', 'POST', 200, 0.01],
  ['/token', 'POST', 400, 2.5],
  ['/token', 'POST', 200, 11],
  ['unmatched', 'GET', 404, 0.07],
  ['/interaction/:uid', 'GET', 200, 1],
];

/** What prom-client's own Counter and Histogram answer for the same requests: the format to match. */
async function promClientsOwn(): Promise<string> {
  const registry = new Registry();
  const counter = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by route template, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  });
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by route template and method',
    labelNames: ['route', 'method'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  for (const [route, method, status, seconds] of REQUESTS) {
    counter.inc({ route, method, status: String(status) });
    histogram.observe({ route, method }, seconds);
  }
  return registry.metrics();
}

describe('HTTP request tally', () => {
  test('scrapes exactly as prom-client’s own counter and histogram would', async () => {
    const registry = new Registry();
    const tally = new HttpTally();
    tally.register(registry);
    for (const request of REQUESTS) tally.record(...request);
    expect(await registry.metrics()).toBe(await promClientsOwn());
  });

  test('counts go on between scrapes, and a scrape changes nothing', async () => {
    const registry = new Registry();
    const tally = new HttpTally();
    tally.register(registry);
    tally.record('/me', 'GET', 200, 0.001);
    await registry.metrics();
    tally.record('/me', 'GET', 200, 0.001);
    await registry.metrics();
    const text = await registry.metrics();
    expect(text).toContain('http_requests_total{route="/me",method="GET",status="200"} 2');
    expect(text).toContain('http_request_duration_seconds_count{route="/me",method="GET"} 2');
  });
});
