/**
 * oidc-provider models whose artifacts belong to a grant and die with it (revokeByGrantId), as in
 * oidc-provider's own memory adapter. Shared by every adapter implementation.
 */
export const GRANTABLE_MODELS: ReadonlySet<string> = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);
