import { open } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { z } from 'zod';
import type { Findings } from './findings.ts';
import { checkPrivateJwks, type PrivateJwks } from './jwks.ts';
import { entries, field } from './raw.ts';
import { clientSecretRefSchema, jwksRefSchema, type SecretRef, secretRefSchema } from './schema.ts';
import { Secret } from './secret.ts';

export interface ResolveContext {
  env: NodeJS.ProcessEnv;
  production: boolean;
  /** Relative `{ file: PATH }` references are resolved against this folder (the config file's). */
  baseDir: string;
  findings: Findings;
}

/** The secrets of a config file, by position; a missing entry had a problem (recorded). */
export interface ResolvedSecrets {
  appSecrets: Map<number, Secret>;
  clientSecrets: Map<number, string>;
  cookieKeys: Secret[] | undefined;
  jwks: PrivateJwks | undefined;
}

/**
 * The cookie keys sign the sessions' cookies and the WeChat state, and key the account page's form
 * tokens and the sealed mini-program session keys (HMAC and key derivation): a short one is
 * guessed offline from any signed value. 32 characters of base64 are 192 bits.
 */
export const MIN_COOKIE_KEY_LENGTH = 32;

/**
 * Resolves every secret reference of the raw (not yet validated) file. It walks the raw value
 * rather than the parsed one so that a missing environment variable is reported together with
 * unrelated schema problems; malformed references are left to the schema to report.
 */
export async function resolveFileSecrets(raw: unknown, ctx: ResolveContext): Promise<ResolvedSecrets> {
  const oidc = field(raw, 'oidc');
  // In file order, so that problems read top to bottom.
  const appSecrets = await resolveEach(field(field(raw, 'wechat'), 'apps'), 'wechat.apps', 'secret', ctx);
  const jwksRef = jwksRefSchema.safeParse(field(oidc, 'jwks'));
  const jwks = jwksRef.success ? await resolveJwks(jwksRef.data, 'oidc.jwks', ctx) : undefined;
  const cookieKeyRefs = entries(field(oidc, 'cookieKeys'));
  const cookieKeys = await resolveEach(field(oidc, 'cookieKeys'), 'oidc.cookieKeys', undefined, ctx);
  for (const [index, key] of cookieKeys) {
    if (key.length >= MIN_COOKIE_KEY_LENGTH) continue;
    ctx.findings.problem(
      `oidc.cookieKeys[${index}]`,
      `is ${key.length} characters long; use at least ${MIN_COOKIE_KEY_LENGTH} random ones (for example \`openssl rand -base64 32\`)`,
    );
    cookieKeys.delete(index);
  }
  const clientSecrets = await resolveEach(field(raw, 'clients'), 'clients', 'client_secret', ctx);
  return {
    appSecrets: mapValues(appSecrets, (text) => new Secret(text)),
    clientSecrets,
    cookieKeys:
      cookieKeyRefs.length > 0 && cookieKeys.size === cookieKeyRefs.length
        ? [...cookieKeys.values()].map((text) => new Secret(text))
        : undefined,
    jwks,
  };
}

/** Resolves `items[i][member]` (or `items[i]` itself) for each item; a client_secret may be a bare string. */
async function resolveEach(
  items: unknown,
  path: string,
  member: string | undefined,
  ctx: ResolveContext,
): Promise<Map<number, string>> {
  const schema = member === 'client_secret' ? clientSecretRefSchema : secretRefSchema;
  const resolved = new Map<number, string>();
  for (const [index, item] of entries(items)) {
    const input = member === undefined ? item : field(item, member);
    const where = `${path}[${index}]${member === undefined ? '' : `.${member}`}`;
    const text = await resolveText(schema, input, where, ctx);
    if (text !== undefined) resolved.set(index, text);
  }
  return resolved;
}

function mapValues<From, To>(map: Map<number, From>, convert: (value: From) => To): Map<number, To> {
  return new Map([...map].map(([key, value]) => [key, convert(value)]));
}

async function resolveText(
  schema: z.ZodType<SecretRef>,
  input: unknown,
  path: string,
  ctx: ResolveContext,
): Promise<string | undefined> {
  const ref = schema.safeParse(input);
  if (!ref.success) return undefined;
  const value = await readSource(ref.data, path, ctx);
  return typeof value === 'string' ? value : undefined;
}

async function resolveJwks(
  ref: SecretRef<unknown>,
  path: string,
  ctx: ResolveContext,
): Promise<PrivateJwks | undefined> {
  const value = await readSource(ref, path, ctx);
  if (value === undefined) return undefined;
  let jwks = value;
  if (typeof value === 'string') {
    try {
      jwks = JSON.parse(value);
    } catch {
      // JSON.parse's message quotes the text around the error: private key material.
      ctx.findings.problem(path, `${describeSource(ref, ctx)} does not hold valid JSON`);
      return undefined;
    }
  }
  return checkPrivateJwks(jwks, path, ctx.findings);
}

/** The value a reference points at, after the literal policy; undefined after recording a problem. */
async function readSource<Literal>(
  ref: SecretRef<Literal>,
  path: string,
  ctx: ResolveContext,
): Promise<string | Literal | undefined> {
  switch (ref.source) {
    case 'value':
      if (ctx.production) {
        ctx.findings.problem(
          path,
          'literal secrets are refused in production; use { env: NAME } or { file: PATH }',
        );
        return undefined;
      }
      ctx.findings.warn(path, 'literal secret in the config file (development only; production refuses it)');
      return ref.value;
    case 'env': {
      const value = ctx.env[ref.name];
      if (value === undefined) ctx.findings.problem(path, `environment variable ${ref.name} is not set`);
      else if (value.trim() === '') ctx.findings.problem(path, `environment variable ${ref.name} is empty`);
      else return value.trim();
      return undefined;
    }
    case 'file':
      return readSecretFile(secretFilePath(ref.path, ctx), path, ctx);
  }
}

async function readSecretFile(file: string, path: string, ctx: ResolveContext): Promise<string | undefined> {
  let text: string;
  let mode: number;
  try {
    // One open file for both: the mode checked is the file's that was read.
    const handle = await open(file, 'r');
    try {
      text = (await handle.readFile('utf8')).trim();
      mode = (await handle.stat()).mode;
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`;
    ctx.findings.problem(path, `file ${file} ${reason}`);
    return undefined;
  }
  if (text === '') {
    ctx.findings.problem(path, `file ${file} is empty`);
    return undefined;
  }
  warnIfOthersCanWrite(file, mode, path, ctx);
  return text;
}

/**
 * A secret file that others may write can be replaced by them: a signing key of theirs in the JWKS
 * signs tokens this provider vouches for. Read access is not checked: Docker's secrets are 0444 and
 * Kubernetes mounts 0644 by default, inside a container of their own, so a warning there would fire
 * on nearly every deployment and be ignored. Write access has no such excuse. A warning, not a
 * refusal: the mount is the operator's to fix, and a start that fails over it helps nobody at 3 a.m.
 */
function warnIfOthersCanWrite(file: string, mode: number, path: string, ctx: ResolveContext): void {
  const writers = [mode & 0o020 ? 'its group' : '', mode & 0o002 ? 'every user' : ''].filter(Boolean);
  if (writers.length === 0) return;
  const octal = (mode & 0o777).toString(8).padStart(3, '0');
  ctx.findings.warn(
    path,
    `file ${file} can be written by ${writers.join(' and ')} (mode ${octal}), who could replace the secret; chmod go-w it`,
  );
}

/**
 * A `{ file: PATH }` reference's file, absolute, as every message names it: a relative PATH is
 * taken from the configuration file's folder, not the working directory, so the path as written
 * sent the operator to look for "secrets/bad.json" where they stood; the absolute one is the file
 * that was read. (A missing file was named absolute and one not JSON as written.)
 */
function secretFilePath(path: string, ctx: ResolveContext): string {
  return resolve(ctx.baseDir, path);
}

function describeSource(ref: SecretRef<unknown>, ctx: ResolveContext): string {
  if (ref.source === 'env') return `environment variable ${ref.name}`;
  if (ref.source === 'file') return `file ${secretFilePath(ref.path, ctx)}`;
  return 'the value';
}
