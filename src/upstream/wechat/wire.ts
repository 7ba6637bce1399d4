/**
 * Readers for WeChat's JSON bodies. WeChat omits optional fields, sends blank
 * strings for withdrawn ones (sex/location since 2021) and is not consistent about
 * numbers vs numeric strings, so every reader is lenient about form and strict
 * only about what a caller declares required.
 */

/** A parsed JSON object body. */
export type WireObject = Readonly<Record<string, unknown>>;

/** A success body lacks a field the caller cannot do without. Carries the field name only, never values. */
export class WireShapeError extends Error {
  override readonly name = 'WireShapeError';
  readonly field: string;

  constructor(field: string) {
    super(`missing or malformed field "${field}"`);
    this.field = field;
  }
}

/** A non-blank string, else undefined (blank and whitespace-only strings count as absent). */
export function optionalString(body: WireObject, key: string): string | undefined {
  const value = body[key];
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

export function requiredString(body: WireObject, key: string): string {
  const value = optionalString(body, key);
  if (value === undefined) throw new WireShapeError(key);
  return value;
}

/** A finite integer given as a JSON number or a numeric string, else undefined. */
export function optionalInteger(body: WireObject, key: string): number | undefined {
  return toInteger(body[key]);
}

export function toInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? value : undefined;
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  return undefined;
}

/** A comma-separated string or an array of strings, as a list without blanks. */
export function stringList(body: WireObject, key: string): string[] {
  const value = body[key];
  const items = typeof value === 'string' ? value.split(',') : Array.isArray(value) ? value : [];
  return items
    .filter((item): item is string => typeof item === 'string')
    .flatMap((item) => {
      const trimmed = item.trim();
      return trimmed === '' ? [] : [trimmed];
    });
}

/** Parses a body as a JSON object; undefined when it is empty, not JSON, or not an object. */
export function parseJsonObject(text: string): WireObject | undefined {
  // A BOM or surrounding whitespace is not worth failing a login over.
  const trimmed = text.replace(/^\uFEFF/, '').trim();
  if (trimmed === '') return undefined;
  try {
    const value: unknown = JSON.parse(trimmed);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as WireObject)
      : undefined;
  } catch {
    return undefined;
  }
}
