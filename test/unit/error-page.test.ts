import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { expect, test } from 'vitest';
import { errorPage } from '../../src/http/errors.ts';
import { frontDoor } from '../../src/http/front-door.ts';
import { inRequestContext, requestLog } from '../../src/http/request-log.ts';
import { createViews } from '../../src/http/views.ts';
import { capturedLog } from '../helpers/captured-log.ts';

// The last-resort page shows a reference (错误编号), the request's id, which a person reads out to
// whoever runs the service: the error line it was logged with must carry it. onError runs outside
// the request's logging context (inRequestContext), so the id is not there by itself.
test("the last-resort page's reference finds the error's log line", async () => {
  const { logger, lines } = capturedLog();
  const views = createViews({ assetBase: '/assets' });
  const app = new Koa();
  const stages = [requestLog(logger, { requests: 'failures', trustProxy: false })];
  app.use(frontDoor({ stages, onError: errorPage(views), around: inRequestContext }));
  app.use(() => {
    throw new Error('a bug');
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/broken`);
    expect(response.status).toBe(500);
    const reference = /class="reference-id">([^<]+)</.exec(await response.text())?.[1];
    expect(reference).toBe(response.headers.get('x-request-id'));
    const failure = lines.find((line) => line.msg === 'unhandled error');
    expect(failure).toMatchObject({ level: 'error', requestId: reference, path: '/broken' });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
