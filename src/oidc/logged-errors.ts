/**
 * Errors whose cause our own code logged already, with what it knew, before handing them to
 * oidc-provider as a server error: the engine's server_error line would only repeat them (with a
 * stack that says nothing more).
 */
const logged = new WeakSet<object>();

export function loggedAlready<T extends object>(error: T): T {
  logged.add(error);
  return error;
}

export function wasLogged(error: unknown): boolean {
  return typeof error === 'object' && error !== null && logged.has(error);
}
