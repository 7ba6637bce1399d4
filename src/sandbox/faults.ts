import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { SandboxInputError } from './input-error.ts';

/**
 * A failure to inject on one API for its next `times` calls. Outcomes: a WeChat
 * errcode body, a gateway status (HTTP 502 with an HTML body), or an empty body
 * (what /cgi-bin/token once answered); a delay can come alone or before any of them.
 */
export const faultSpecSchema = z
  .strictObject({
    /** API path without the leading slash, e.g. 'sns/oauth2/access_token'. */
    api: z.string().transform((api) => api.replace(/^\/+/, '')),
    times: z.int().min(1).max(10_000).default(1),
    delayMs: z.int().min(0).max(600_000).optional(),
    errcode: z
      .int()
      .refine((code) => code !== 0, 'errcode 0 is success, not a fault')
      .optional(),
    errmsg: z.string().max(200).optional(),
    httpStatus: z.int().min(400).max(599).optional(),
    emptyBody: z.literal(true).optional(),
    /** Run the real handler first (a code gets consumed), then answer with the fault. */
    afterProcessing: z.boolean().optional(),
  })
  .refine(
    (f) => [f.errcode, f.httpStatus, f.emptyBody].filter((v) => v !== undefined).length <= 1,
    'choose at most one of errcode, httpStatus, emptyBody',
  )
  .refine(
    (f) => f.delayMs !== undefined || f.errcode !== undefined || f.httpStatus !== undefined || f.emptyBody,
    'a fault needs delayMs, errcode, httpStatus or emptyBody',
  );

export type FaultSpec = z.input<typeof faultSpecSchema>;
export type Fault = z.output<typeof faultSpecSchema>;

export class FaultQueue {
  readonly #known = new Set<string>();
  readonly #queued = new Map<string, Fault[]>();
  #release = new AbortController();
  #pendingDelays = 0;

  /** Called by each API route, so a fault on a misspelt API is refused instead of never firing. */
  registerApi(api: string): void {
    this.#known.add(api);
  }

  knownApis(): string[] {
    return [...this.#known].sort();
  }

  /** Validates (throws SandboxInputError) and queues. */
  inject(spec: FaultSpec): Fault {
    const parsed = faultSpecSchema.safeParse(spec);
    if (!parsed.success) throw new SandboxInputError(z.prettifyError(parsed.error));
    const fault = parsed.data;
    if (!this.#known.has(fault.api)) {
      throw new SandboxInputError(`unknown api "${fault.api}"; known: ${this.knownApis().join(', ')}`);
    }
    const queue = this.#queued.get(fault.api) ?? [];
    queue.push({ ...fault });
    this.#queued.set(fault.api, queue);
    return fault;
  }

  /** The fault for this call, if any; each call uses up one of its `times`. */
  take(api: string): Fault | undefined {
    const queue = this.#queued.get(api);
    const fault = queue?.[0];
    if (!queue || !fault) return undefined;
    fault.times -= 1;
    if (fault.times <= 0) queue.shift();
    if (queue.length === 0) this.#queued.delete(api);
    return fault;
  }

  list(): Fault[] {
    return [...this.#queued.values()].flat().map((fault) => ({ ...fault }));
  }

  /** Requests currently held by a delay fault. */
  get pendingDelays(): number {
    return this.#pendingDelays;
  }

  /** Holds the request; `clear()` (or closing the sandbox) lets every held request go on at once. */
  async hold(ms: number): Promise<void> {
    this.#pendingDelays += 1;
    try {
      await delay(ms, undefined, { signal: this.#release.signal });
    } catch {
      // released early: carry on with the request
    } finally {
      this.#pendingDelays -= 1;
    }
  }

  clear(): void {
    this.#queued.clear();
    this.#release.abort();
    this.#release = new AbortController();
  }
}
