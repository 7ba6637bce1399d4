import type { z } from 'zod';
import { type Findings, issueMessages } from './findings.ts';
import {
  apiBaseUrlSchema,
  databaseUrlSchema,
  issuerSchema,
  openBaseUrlSchema,
  redisUrlSchema,
} from './schema.ts';

/** Deploy-time values the environment sets over the file. */
export interface EnvOverrides {
  port?: number;
  managementPort?: number;
  issuer?: string;
  databaseUrl?: string;
  redisUrl?: string;
  openBaseUrl?: string;
  apiBaseUrl?: string;
}

/**
 * Reads PORT, MANAGEMENT_PORT, ISSUER, DATABASE_URL, REDIS_URL, WECHAT_OPEN_BASE_URL and
 * WECHAT_API_BASE_URL.
 * An empty variable counts as unset (compose files often write `REDIS_URL=`). Problems are named
 * after the variable, and never quote its value: DATABASE_URL may hold a password.
 */
export function readEnvOverrides(env: NodeJS.ProcessEnv, findings: Findings): EnvOverrides {
  const overrides: EnvOverrides = {};
  overrides.port = readPort(env, 'PORT', findings);
  overrides.managementPort = readPort(env, 'MANAGEMENT_PORT', findings);
  overrides.issuer = parse(env, 'ISSUER', issuerSchema, findings);
  overrides.databaseUrl = parse(env, 'DATABASE_URL', databaseUrlSchema, findings);
  overrides.redisUrl = parse(env, 'REDIS_URL', redisUrlSchema, findings);
  overrides.openBaseUrl = parse(env, 'WECHAT_OPEN_BASE_URL', openBaseUrlSchema, findings);
  overrides.apiBaseUrl = parse(env, 'WECHAT_API_BASE_URL', apiBaseUrlSchema, findings);
  return overrides;
}

function readPort(env: NodeJS.ProcessEnv, name: string, findings: Findings): number | undefined {
  const port = read(env, name);
  if (port === undefined) return undefined;
  const number = /^\d{1,5}$/.test(port) ? Number(port) : Number.NaN;
  if (number >= 1 && number <= 65535) return number;
  findings.problem(name, 'must be an integer from 1 to 65535');
  return undefined;
}

function read(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function parse(
  env: NodeJS.ProcessEnv,
  name: string,
  schema: z.ZodType<string, string>,
  findings: Findings,
): string | undefined {
  const value = read(env, name);
  if (value === undefined) return undefined;
  const result = schema.safeParse(value, { error: issueMessages });
  if (result.success) return result.data;
  findings.addIssues(result.error.issues, name);
  return undefined;
}
