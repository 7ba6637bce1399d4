import type { Interaction } from 'oidc-provider';

/**
 * The subject the client's id_token_hint names, or undefined: no hint, or one whose payload cannot
 * be read here (an encrypted ID token). oidc-provider verified the hint at the authorization
 * request (its signature, and that it was issued to this client) before the interaction began, so
 * its payload is only read, not verified again.
 *
 * oidc-provider compares the hint with the session only at the authorization request: the login
 * that an interaction completes is not compared at the resume, so the comparison is ours.
 */
export function hintedSubject(interaction: Interaction): string | undefined {
  const hint = interaction.params.id_token_hint;
  if (typeof hint !== 'string') return undefined;
  // A signed ID token: header.payload.signature, the payload base64url JSON (RFC 7515 §7.1).
  const [, payload, , ...more] = hint.split('.');
  if (payload === undefined || more.length > 0) return undefined;
  try {
    const { sub } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}
