import type { z } from 'zod';

/**
 * "Did you mean" for an unknown option: the known name an operator most likely meant. The same name
 * in another case or spelling convention (trust_proxy, TrustProxy, trust-proxy for trustProxy),
 * else one within a typo or two (redirect_uri for redirect_uris, sesionKeyTtl). Undefined when
 * nothing is that close: a far-fetched guess misleads more than none.
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  // No option's name is near this long: nothing to suggest, and no table of its length squared.
  if (name.length > MAX_NAME_LENGTH) return undefined;
  const wanted = normalized(name);
  const same = known.find((candidate) => normalized(candidate) === wanted);
  if (same !== undefined) return same;
  // A short name is within two edits of too many others: one only.
  const limit = wanted.length <= 4 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(wanted, normalized(candidate));
    if (distance <= limit && (best === undefined || distance < best.distance))
      best = { name: candidate, distance };
  }
  return best?.name;
}

/** Longer than any option's name by far (the longest are some 30 characters). */
const MAX_NAME_LENGTH = 64;

/** Case, underscores and hyphens ignored: snake_case, kebab-case and camelCase spell one name. */
function normalized(name: string): string {
  return name.toLowerCase().replace(/[_-]/g, '');
}

/**
 * Edits (insert, delete, replace, or swap two neighbours) from one to the other: optimal string
 * alignment, so that a transposed pair ("prot") counts as the one typo it is.
 */
function editDistance(from: string, to: string): number {
  const rows = Array.from({ length: from.length + 1 }, (_, i) =>
    Array.from({ length: to.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= from.length; i++) {
    for (let j = 1; j <= to.length; j++) {
      const cost = from[i - 1] === to[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && from[i - 1] === to[j - 2] && from[i - 2] === to[j - 1])
        distance = Math.min(distance, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = distance;
    }
  }
  return at(from.length, to.length);
}

/**
 * The option names `schema` knows for the mapping at `path` (as zod reports an unknown key's
 * place: ['clients', 0]), or none. Walks through what wraps a schema (optional, default, prefault,
 * a refinement's pipe, a preprocess) to the objects and lists inside.
 */
export function knownKeysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let current: z.core.$ZodType | undefined = schema;
  for (const segment of path) current = current && member(current, segment);
  const def = current && structure(current)?._zod.def;
  return def?.type === 'object' ? Object.keys((def as z.core.$ZodObjectDef).shape) : [];
}

/** The schema of a list's items (a number) or of a mapping's option (a name). */
function member(schema: z.core.$ZodType, segment: PropertyKey): z.core.$ZodType | undefined {
  const def = structure(schema)?._zod.def;
  if (typeof segment === 'number' && def?.type === 'array') return (def as z.core.$ZodArrayDef).element;
  if (typeof segment === 'string' && def?.type === 'object')
    return (def as z.core.$ZodObjectDef).shape[segment];
  return undefined;
}

/** The object or array a schema checks, through its wrappers; undefined for anything else. */
function structure(schema: z.core.$ZodType): z.core.$ZodType | undefined {
  const def = schema._zod.def;
  if (def.type === 'object' || def.type === 'array') return schema;
  if ('innerType' in def) return structure(def.innerType as z.core.$ZodType);
  if (def.type === 'pipe') {
    const { in: input, out } = def as z.core.$ZodPipeDef;
    return structure(input) ?? structure(out);
  }
  return undefined;
}
