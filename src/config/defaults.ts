import { accountPageSchema, avatarsSchema, limitsSchema, shutdownSchema } from './schema.ts';
import type { AccountPageConfig, AvatarsConfig, LimitsConfig, ShutdownConfig } from './types.ts';

/**
 * Each optional section of the configuration at its defaults, as the schema gives them to a file
 * without it: the defaults are written in the schema alone (with their descriptions), and code or
 * tests that need a section's defaults take them from here.
 */
export const SECTION_DEFAULTS: {
  limits: LimitsConfig;
  avatars: AvatarsConfig;
  account: AccountPageConfig;
  shutdown: ShutdownConfig;
} = {
  limits: limitsSchema.parse(undefined),
  avatars: avatarsSchema.parse(undefined),
  account: accountPageSchema.parse(undefined),
  shutdown: shutdownSchema.parse(undefined),
};
