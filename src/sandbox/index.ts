export { createSandbox } from './create-sandbox.ts';
export type { Fault, FaultSpec } from './faults.ts';
export { SandboxInputError } from './input-error.ts';
export { assertSandboxAllowed } from './production-guard.ts';
export type { SandboxState, SandboxUserSummary } from './state.ts';
export type {
  ListeningSandbox,
  Sandbox,
  SandboxApp,
  SandboxAppKind,
  SandboxContentType,
  SandboxDenyMode,
  SandboxOptions,
} from './types.ts';
export type { NewUser, SandboxUser, UserPatch } from './users.ts';
