import { createSandbox } from '../src/sandbox/create-sandbox.ts';
import { MINI_PROGRAM_APP, WEBSITE_APP } from '../test/helpers/bridge.ts';
import { serveParent } from './child-ipc.ts';

/**
 * The WeChat sandbox in its own process, as WeChat is another host: its CPU is not the bridge's.
 * Stable ids (one seed) make runs comparable.
 */
const sandbox = await createSandbox({
  apps: [
    { ...WEBSITE_APP, name: 'Benchmark website' },
    { ...MINI_PROGRAM_APP, name: 'Benchmark mini program' },
  ],
  seed: 'wechat-oidc-bridge-bench',
}).listen(0);
serveParent({ stop: () => sandbox.close() }).ready({ url: sandbox.url });
