import { parseArgs } from 'node:util';
import { SandboxInputError } from './input-error.ts';
import type { SandboxApp, SandboxAppKind, SandboxContentType, SandboxDenyMode } from './types.ts';

export const DEFAULT_PORT = 4100;

/** Used when no --app is given: the website app of config/default.yaml, so both work together out of the box. */
export const DEFAULT_APP: SandboxApp = {
  kind: 'website',
  appid: 'wx0123456789abcdef',
  secret: 'sandbox-website-secret',
  name: 'Sandbox website app',
};

export const USAGE = `Usage: sandbox [options]
  --port <n>              port to listen on (default ${DEFAULT_PORT}; 0 = any free port)
  --host <addr>           interface to bind (default 127.0.0.1)
  --app <spec>            an app, repeatable: kind:appid:secret[:unbound]
                          kind = website | official_account | mini_program
                          default: the website app ${DEFAULT_APP.appid} of config/default.yaml
  --seed <text>           stable user ids, unionids and openids across restarts
  --content-type <type>   text/plain (default) or application/json
  --deny-mode <mode>      redirect_without_code (default) or no_redirect
  --deliver-twice         deliver every callback twice, the copy without cookies (as WeChat does)
  --allow-production      run even when NODE_ENV=production
  --help                  this text`;

export interface SandboxCliOptions {
  help: boolean;
  port: number;
  host: string;
  apps: SandboxApp[];
  seed: string | undefined;
  contentType: SandboxContentType;
  denyMode: SandboxDenyMode;
  deliverTwice: boolean;
  allowProduction: boolean;
}

const KINDS: readonly SandboxAppKind[] = ['website', 'official_account', 'mini_program'];

/** kind:appid:secret[:unbound]; the secret may itself contain colons. */
export function parseAppSpec(spec: string): SandboxApp {
  const [kind, appid, ...rest] = spec.split(':');
  const unbound = rest.at(-1) === 'unbound' && rest.length > 1;
  const secret = (unbound ? rest.slice(0, -1) : rest).join(':');
  if (!KINDS.includes(kind as SandboxAppKind) || !appid || !secret) {
    throw new SandboxInputError(`--app "${kind ?? ''}:${appid ?? ''}:…" must be kind:appid:secret[:unbound]`);
  }
  return { kind: kind as SandboxAppKind, appid, secret, boundToOpenPlatform: !unbound };
}

function oneOf<T extends string>(
  name: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T))
    throw new SandboxInputError(`--${name} must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** Throws SandboxInputError (without echoing secrets) for unknown or malformed options. */
export function parseSandboxArgs(argv: string[]): SandboxCliOptions {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (error) {
    throw new SandboxInputError((error as Error).message);
  }
  const port = Number(values.port ?? DEFAULT_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new SandboxInputError('--port must be 0..65535');
  return {
    help: values.help ?? false,
    port,
    host: values.host ?? '127.0.0.1',
    apps: values.app?.length ? values.app.map(parseAppSpec) : [DEFAULT_APP],
    seed: values.seed,
    contentType: oneOf(
      'content-type',
      values['content-type'],
      ['text/plain', 'application/json'],
      'text/plain',
    ),
    denyMode: oneOf(
      'deny-mode',
      values['deny-mode'],
      ['redirect_without_code', 'no_redirect'],
      'redirect_without_code',
    ),
    deliverTwice: values['deliver-twice'] ?? false,
    allowProduction: values['allow-production'] ?? false,
  };
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      help: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      app: { type: 'string', multiple: true },
      seed: { type: 'string' },
      'content-type': { type: 'string' },
      'deny-mode': { type: 'string' },
      'deliver-twice': { type: 'boolean' },
      'allow-production': { type: 'boolean' },
    },
  });
}
