import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../package-root.ts';

/**
 * This release's version, as package.json gives it: named in the start-up line and the
 * build_info metric, so that an operator can tell which release each instance of a fleet runs
 * (during a rolling upgrade, or when a fix is said to have landed).
 */
export const VERSION: string = (
  JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
