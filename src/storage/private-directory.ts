import { chmod, mkdir, stat } from 'node:fs/promises';

export interface DirectoryLogger {
  warn(o: object, msg: string): void;
}

/**
 * Makes `dir` (the data directory) exist and be this user's alone: created with mode 0700, and an
 * existing one that lets its group or others in loses those bits. It holds generated signing and
 * cookie keys and, embedded, live tokens and sessions (an opaque token's id is the token) and the
 * accounts with their phone numbers, while SQLite creates its files readable by everyone (0644).
 * Where the mode cannot be changed (another user owns the directory) that is logged, and the
 * server goes on: the operator chose those permissions.
 */
export async function privateDirectory(dir: string, logger?: DirectoryLogger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { mode } = await stat(dir);
  if ((mode & 0o077) === 0) return;
  try {
    await chmod(dir, mode & 0o700);
    logger?.warn(
      { dir, was: (mode & 0o777).toString(8) },
      'took the group and other permissions off the data directory: it holds keys, tokens and accounts',
    );
  } catch (error) {
    logger?.warn(
      { dir, mode: (mode & 0o777).toString(8), error: (error as Error).message },
      'the data directory lets other users in and its permissions could not be changed',
    );
  }
}
