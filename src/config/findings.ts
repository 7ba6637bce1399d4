import type { z } from 'zod';
import { closestName } from './suggest.ts';

/** A field's place in the file, e.g. ['wechat', 'apps', 1, 'secret'], or an environment variable name. */
export type FieldPath = readonly PropertyKey[] | string;

/** `wechat.apps[1].secret`: the notation people use to point at a place in a YAML or JSON file. */
export function formatPath(path: FieldPath): string {
  if (typeof path === 'string') return path;
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$]*$/.test(segment)) {
      text += text === '' ? segment : `.${segment}`;
    } else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text === '' ? '(top level)' : text;
}

/**
 * Problems and warnings collected while loading, so that every problem is reported at once.
 * Messages name the field and what is wrong, never a value: values can be secrets.
 */
export class Findings {
  readonly problems: string[] = [];
  readonly #warnings = new Set<string>();

  problem(path: FieldPath, message: string): void {
    const line = `${formatPath(path)}: ${message}`;
    if (!this.problems.includes(line)) this.problems.push(line);
  }

  warn(path: FieldPath, message: string): void {
    this.#warnings.add(`${formatPath(path)}: ${message}`);
  }

  get warnings(): string[] {
    return [...this.#warnings];
  }

  /**
   * zod's issues, one problem each. `knownKeys` gives the names known where an unknown key was
   * found (its mapping's path), for a "did you mean" beside it.
   */
  addIssues(
    issues: readonly z.core.$ZodIssue[],
    prefix: FieldPath = [],
    knownKeys: (path: readonly PropertyKey[]) => readonly string[] = () => [],
  ): void {
    for (const issue of issues) {
      const path = typeof prefix === 'string' ? prefix : [...prefix, ...issue.path];
      if (issue.code === 'unrecognized_keys' && typeof path !== 'string') {
        for (const key of issue.keys)
          this.problem([...path, key], unknownKeyMessage(path, key, knownKeys(path)));
      } else this.problem(path, issue.message);
    }
  }
}

function unknownKeyMessage(path: readonly PropertyKey[], key: string, known: readonly string[]): string {
  const inClient = path.length === 2 && path[0] === 'clients';
  const message = inClient ? 'unknown client metadata (not a standard registration name)' : 'unknown option';
  const meant = closestName(key, known);
  return meant === undefined ? message : `${message}: did you mean ${meant}?`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
};

/** zod's default messages rephrased for people editing a config file; they never quote the input. */
export const issueMessages: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}`;
    case 'too_small':
      if (issue.origin === 'string') return 'must not be empty';
      if (issue.origin === 'array') return `must have at least ${issue.minimum} item(s)`;
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} item(s)`;
      return `must be at most ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of: ${issue.values.map((value) => String(value)).join(', ')}`;
    case 'invalid_union':
      return 'has an invalid value';
    default:
      return undefined;
  }
};
