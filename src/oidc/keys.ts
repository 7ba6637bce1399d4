import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Secret } from '../config/secret.ts';
import type { Config } from '../config/types.ts';
import { privateDirectory } from '../storage/private-directory.ts';

export interface ProviderKeys {
  jwks: { keys: Record<string, unknown>[] };
  cookieKeys: Secret[];
}

interface Logger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * Signing and cookie keys: from config when given (production requires it), otherwise generated on
 * first start and kept in the data directory so that sessions and tokens survive a restart.
 * Generated files are written with mode 0600.
 */
export async function loadProviderKeys(config: Config, logger: Logger): Promise<ProviderKeys> {
  // Keys generated into the data directory are secrets: the directory must be this user's alone.
  if (!config.oidc.jwks || !config.oidc.cookieKeys) await privateDirectory(config.dataDir, logger);
  const jwks = config.oidc.jwks ?? (await generatedJwks(config.dataDir, logger));
  const cookieKeys = config.oidc.cookieKeys ?? (await generatedCookieKeys(config.dataDir, logger));
  return { jwks, cookieKeys };
}

async function generatedJwks(dataDir: string, logger: Logger): Promise<ProviderKeys['jwks']> {
  const file = join(dataDir, 'jwks.json');
  const existing = await readJson(file);
  if (existing) return existing as ProviderKeys['jwks'];
  // RS256 signs by default (what every relying party accepts); ES256 and EdDSA are offered for
  // clients that register id_token_signed_response_alg.
  const keys = [
    rsaKey(),
    ecKey(),
    {
      ...exportPrivate(generateKeyPairSync('ed25519').privateKey),
      use: 'sig',
      alg: 'EdDSA',
      kid: randomUUID(),
    },
  ];
  await writeSecretFile(file, { keys });
  logger.warn({ file }, 'generated new signing keys (development only: configure oidc.jwks in production)');
  return (await readJson(file)) as ProviderKeys['jwks'];
}

async function generatedCookieKeys(dataDir: string, logger: Logger): Promise<Secret[]> {
  const file = join(dataDir, 'cookie-keys.json');
  const existing = (await readJson(file)) as string[] | undefined;
  if (existing) return existing.map((k) => new Secret(k));
  const keys = [randomBytes(32).toString('base64url')];
  await writeSecretFile(file, keys);
  logger.warn(
    { file },
    'generated new cookie keys (development only: configure oidc.cookieKeys in production)',
  );
  return ((await readJson(file)) as string[]).map((k) => new Secret(k));
}

function rsaKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...exportPrivate(privateKey), use: 'sig', alg: 'RS256', kid: randomUUID() };
}

function ecKey(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...exportPrivate(privateKey), use: 'sig', alg: 'ES256', kid: randomUUID() };
}

function exportPrivate(key: import('node:crypto').KeyObject): Record<string, unknown> {
  return key.export({ format: 'jwk' }) as Record<string, unknown>;
}

/**
 * A generated key file, or undefined when there is none yet. A file that is not JSON is named and
 * not quoted: JSON.parse's message repeats the text around the fault, here key material.
 */
async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${code ?? 'unknown error'}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(
      `${file} is not valid JSON: restore it from a backup, or delete it to generate new keys (which ends every session and token)`,
    );
  }
}

async function writeSecretFile(file: string, value: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(value), { mode: 0o600, flag: 'wx' }).catch(async (error) => {
    // Another process generated it at the same moment: theirs wins, ours is discarded.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
}
