import type { AdapterPayload } from 'oidc-provider';
import { GRANTABLE_MODELS } from '../grantable.ts';
import { jsonText } from './json.ts';

/**
 * The columns an artifact is saved in by both SQL adapters (PostgreSQL, ./oidc-adapter.ts;
 * SQLite, ../sqlite/oidc-adapter.ts): the payload without `consumed` (consumed_at is the one source
 * of truth for that) and the ids it is found by. Each adapter keeps the times as its database does.
 */
export function artifactColumns(model: string, payload: AdapterPayload) {
  const { consumed, ...rest } = payload;
  return {
    payload: jsonText(rest),
    grantId: GRANTABLE_MODELS.has(model) ? (payload.grantId ?? null) : null,
    uid: payload.uid ?? null,
    userCode: payload.userCode ?? null,
    /** Milliseconds since the epoch. */
    consumedAt: consumed ? Number(consumed) * 1000 : null,
  };
}

/** The payload as oidc-provider saved it, `consumed` (epoch seconds) restored from its column. */
export function withConsumed(payload: AdapterPayload, consumedAtMs: number | null): AdapterPayload {
  if (consumedAtMs !== null) payload.consumed = Math.floor(consumedAtMs / 1000);
  return payload;
}
