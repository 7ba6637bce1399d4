/**
 * The JSON text of a json parameter, which the statement casts (`cast($n as json)`). Serialised
 * here rather than by the driver: pg would send a JS array as a PostgreSQL array and a bare string
 * as invalid JSON.
 */
export function jsonText(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError('value is not JSON-serialisable');
  return json;
}
