/**
 * Reading the raw, not yet validated file: some checks run on it so that they are reported
 * together with schema problems, and must not trust its shape.
 */

/** `value[name]` when value is an object, else undefined. */
export function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

/** The entries of value when it is an array, else none. */
export function entries(value: unknown): Array<[number, unknown]> {
  return Array.isArray(value) ? [...value.entries()] : [];
}
