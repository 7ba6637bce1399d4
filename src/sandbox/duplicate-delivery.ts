/** What one of WeChat's server-side copies of a callback got back from the app. */
export interface DuplicateDelivery {
  /** The redirect_uri with code and state, as requested. */
  url: string;
  /** undefined when the request failed (connection refused...). */
  status: number | undefined;
  location: string | undefined;
  /** Whether the app set any cookie on a request that carried none. */
  setCookie: boolean;
  /** The first 4 000 characters of the answer. */
  body: string;
  error?: string;
}

const BODY_LIMIT = 4000;

/**
 * WeChat often requests the redirect_uri a second time with the same code, from its own servers and
 * so without the person's cookies (wechat-api.md §3 "Double callback"). With the mode on, the
 * sandbox does the same: as it redirects the browser with a code, it requests that URL itself,
 * concurrently, and keeps what came back for tests and developers to inspect.
 */
export class DuplicateDeliveries {
  enabled: boolean;
  readonly #done: DuplicateDelivery[] = [];
  readonly #pending = new Set<Promise<void>>();

  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  /** Starts the copy when the mode is on; never waits for it (it races the browser, as WeChat's does). */
  deliver(url: string, userAgent: string | undefined): void {
    if (!this.enabled) return;
    const copy = this.#request(url, userAgent).then((delivery) => {
      this.#done.push(delivery);
    });
    this.#pending.add(copy);
    void copy.finally(() => this.#pending.delete(copy));
  }

  list(): DuplicateDelivery[] {
    return this.#done.map((delivery) => ({ ...delivery }));
  }

  /** Resolves once every copy started so far has its answer. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  clear(): void {
    this.#done.length = 0;
  }

  async #request(url: string, userAgent: string | undefined): Promise<DuplicateDelivery> {
    try {
      const response = await fetch(url, {
        redirect: 'manual',
        headers: userAgent ? { 'user-agent': userAgent } : {},
      });
      const body = (await response.text()).slice(0, BODY_LIMIT);
      return {
        url,
        status: response.status,
        location: response.headers.get('location') ?? undefined,
        setCookie: response.headers.getSetCookie().length > 0,
        body,
      };
    } catch (error) {
      return {
        url,
        status: undefined,
        location: undefined,
        setCookie: false,
        body: '',
        error: (error as Error).message,
      };
    }
  }
}
