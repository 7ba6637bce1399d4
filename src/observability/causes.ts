/**
 * An error's message and its causes', each said once, for a one-line report to an operator
 * ("cannot connect to Redis at redis://...: connect ECONNREFUSED 127.0.0.1:6379"). A cause whose
 * message an outer one already quotes (a MigrationError quotes its cause) is not repeated.
 */
export function causes(error: unknown): string {
  const messages: string[] = [];
  for (let at: unknown = error; at !== undefined && messages.length < 5; ) {
    const message = at instanceof Error ? at.message : String(at);
    if (!messages.some((seen) => seen.includes(message))) messages.push(message);
    at = at instanceof Error ? at.cause : undefined;
  }
  return messages.join(': ');
}

/** A short, secret-free reason for logs and last_error: an error's code or class. */
export function errorClass(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return typeof code === 'string' ? code : err.name;
  }
  return typeof err;
}
