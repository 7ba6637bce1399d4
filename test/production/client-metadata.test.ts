import { describe, expect, test } from 'vitest';
import type { ClientConfig } from '../../src/config/types.ts';
import { MINI_PROGRAM_APP, MINI_PROGRAM_CLIENT, RP, startBridge, WEBSITE_APP } from '../helpers/bridge.ts';

// oidc-provider checks a configured client only at its first use, and answers that request (a
// person's login) with its refusal. loadConfig asks it about every configured client beforehand;
// the start asks again, for a configuration built in code, for the clients the server registers
// itself (the account page's, the demo's) and against the keys of this start.

/** Acceptable to our types, refused by oidc-provider: a redirect URI with a fragment. */
const BROKEN: ClientConfig = {
  ...RP,
  client_id: 'broken-rp',
  redirect_uris: ['https://rp.example.test/callback#section'],
};

const PUBLIC_ADMIN: ClientConfig = {
  client_id: 'admin-spa',
  token_endpoint_auth_method: 'none',
  redirect_uris: ['https://spa.example.test/cb'],
  scope: 'openid admin',
};

describe('the start refuses clients oidc-provider would refuse at their first use', () => {
  test('a configuration built in code: every refused client named with its field, nothing served', async () => {
    const started = startBridge({
      storage: 'embedded',
      configure: (config) => ({ ...config, clients: [...config.clients, BROKEN, PUBLIC_ADMIN] }),
    });
    await expect(started).rejects.toThrow(
      'refusing to start: oidc-provider refuses client metadata:\n' +
        '  clients[1].redirect_uris: oidc-provider refuses client "broken-rp": redirect_uris must not contain fragments\n' +
        '  clients[2].scope: oidc-provider refuses client "admin-spa": scope must only contain Authorization Server supported scope values',
    );
  });

  test('the clients the server adds (account page, demo) and a mini program pass, against generated keys', async () => {
    const bridge = await startBridge({
      storage: 'embedded',
      demo: true,
      apps: [WEBSITE_APP, MINI_PROGRAM_APP],
      configure: (config) => ({
        ...config,
        clients: [
          ...config.clients,
          MINI_PROGRAM_CLIENT,
          { ...RP, client_id: 'ec-rp', id_token_signed_response_alg: 'ES256' },
        ],
      }),
    });
    try {
      const discovery = await fetch(`${bridge.url}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
    } finally {
      await bridge.close();
    }
  });
});
