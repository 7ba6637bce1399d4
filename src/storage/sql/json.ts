import { type RawBuilder, sql } from 'kysely';

/**
 * A jsonb parameter. Serialised here rather than by the driver: pg would send a JS array
 * as a PostgreSQL array and a bare string as invalid JSON.
 */
export function jsonb(value: unknown): RawBuilder<string> {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError('value is not JSON-serialisable');
  return sql<string>`cast(${json} as jsonb)`;
}
