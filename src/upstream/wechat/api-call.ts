import type { Dispatcher } from 'undici';
import { Secret } from '../../config/secret.ts';
import { outboundDispatcher } from '../../http/outbound.ts';
import { upstreamCodeForErrcode } from './errcode-map.ts';
import { queryString } from './query-string.ts';
import { UpstreamError, type UpstreamErrorCode } from './types.ts';
import { parseJsonObject, toInteger, type WireObject, WireShapeError } from './wire.ts';

/** One HTTP attempt against the WeChat API, as the metrics/logging hook sees it. */
export interface WeChatCallEvent {
  /** API path such as "sns/userinfo": never the URL, which carries secrets and codes. */
  api: string;
  durationMs: number;
  /**
   * 'ok': a usable answer. 'errcode': WeChat answered but not with a usable success
   * (a non-zero errcode, or a success body missing a required field: errcode then absent).
   * 'transport': no usable answer (connection error, timeout, HTTP 5xx, empty or non-JSON body).
   */
  outcome: 'ok' | 'errcode' | 'transport';
  errcode?: number;
}

export interface WeChatCallOptions {
  /** e.g. https://api.weixin.qq.com (a trailing slash is tolerated). */
  apiBaseUrl: string;
  /** Per HTTP attempt, covering the headers and the whole body. */
  timeoutMs: number;
  /** Tests pass a MockAgent; production uses the process's outbound pools (http/outbound.ts). */
  dispatcher?: Dispatcher;
  /** One event per HTTP attempt; never carries secrets, codes or tokens. A throwing hook is ignored. */
  onCall?: (event: WeChatCallEvent) => void;
  /** Monotonic milliseconds for durationMs; tests inject their own. */
  now?: () => number;
  /** Waits before the one retry (RETRY_PAUSE_MS, jittered); tests inject their own. */
  pause?: (ms: number) => Promise<void>;
}

/**
 * Before a retry: WeChat's -1 means "system busy, try again later"
 * (wechat-api.md sections 4 and 13), so an immediate second request tends to meet the same busy
 * moment. 150 to 300 ms, jittered so that instances retrying together do not arrive together,
 * is little against a login's wait for its callback.
 */
export const RETRY_PAUSE_MS = 150;

/**
 * The longest one call can take: two attempts (the one retry, also taken by a call that spends a
 * single-use code when WeChat answers -1), each bounded by the timeout, and the jittered pause
 * between them.
 */
export function longestCallMs(timeoutMs: number): number {
  return 2 * timeoutMs + 2 * RETRY_PAUSE_MS;
}

/**
 * WeChat's answers are small JSON objects (a few hundred bytes; a profile or a phone number a
 * kilobyte). A body past this is not WeChat answering, and is not read into memory: the call fails
 * as a transport error.
 */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/** A request value; wrap secrets, codes and tokens in Secret so they are checked for in transport errors. */
export type WireValue = string | Secret;

export interface WeChatCallSpec<T> {
  /** Path under the API base URL without a leading slash, e.g. "sns/oauth2/access_token". */
  api: string;
  method?: 'GET' | 'POST';
  query?: Readonly<Record<string, WireValue>>;
  /** Sent as a JSON object body (POST). */
  json?: Readonly<Record<string, WireValue | number | boolean>>;
  /**
   * Safe to repeat: retried once on errcode -1 or a transport failure. Calls that spend a
   * single-use code say false and are retried on -1 only, as WeChat's documentation asks
   * (wechat-api.md §4, §8): that is WeChat answering "busy", where a timeout or a dropped
   * connection leaves unknown whether the code was spent. A retry told the code is used or
   * invalid then fails with the busy answer, the first and true reason.
   */
  idempotent: boolean;
  /** Builds the result from a success body; throws WireShapeError when a required field is missing. */
  read: (body: WireObject) => T;
}

export type WeChatCall = <T>(spec: WeChatCallSpec<T>) => Promise<T>;

interface PreparedRequest {
  api: string;
  /** Where it goes: the API base URL's origin, and the path under it with the query. */
  origin: string;
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body: string | undefined;
  /** Every revealed secret in the forms it may take on the wire, to keep them out of error causes. */
  revealed: string[];
  /** The call authenticates with the AppSecret (code exchanges, stable_token), not an access token. */
  sentAppSecret: boolean;
}

/**
 * The one way this bridge talks to api.weixin.qq.com: WeChat answers HTTP 200 with an
 * errcode body for business errors, with JSON whatever the Content-Type, and its
 * errmsg can echo inputs, so only the errcode is ever kept (wechat-api.md §1).
 */
export function createWeChatCall(options: WeChatCallOptions): WeChatCall {
  const base = new URL(options.apiBaseUrl);
  const target = { origin: base.origin, basePath: base.pathname.replace(/\/+$/, '') };
  const now = options.now ?? (() => performance.now());
  const pause = options.pause ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  const emit = (event: WeChatCallEvent): void => {
    try {
      options.onCall?.(event);
    } catch {
      // Metrics must never turn a good login into a failed one.
    }
  };

  const attempt = async <T>(spec: WeChatCallSpec<T>, prepared: PreparedRequest): Promise<T> => {
    const started = now();
    // Counts the failure, and the error to throw: `detail` for the log says what was wrong with an
    // answer that carried no errcode, or why none came.
    const fail = (
      outcome: WeChatCallEvent['outcome'],
      code: UpstreamErrorCode,
      { errcode, detail, cause }: { errcode?: number; detail?: string; cause?: Error } = {},
    ): UpstreamError => {
      emit({
        api: spec.api,
        durationMs: now() - started,
        outcome,
        ...(errcode === undefined ? {} : { errcode }),
      });
      return new UpstreamError(code, spec.api, errcode, { cause, detail });
    };

    let answer: { status: number; text: string };
    try {
      answer = await send(prepared, options);
    } catch (error) {
      const cause = safeCause(error, prepared);
      throw fail('transport', 'unavailable', cause ? { cause, detail: cause.message } : {});
    }
    const status = `HTTP ${answer.status}`;
    if (answer.status >= 500) throw fail('transport', 'unavailable', { detail: status });
    const body = parseJsonObject(answer.text);
    if (body === undefined) {
      const what = answer.text.length === 0 ? 'an empty body' : 'a body that is not a JSON object';
      throw fail('transport', 'unavailable', { detail: `${status}, ${what}` });
    }

    if (body.errcode !== undefined && body.errcode !== null) {
      const errcode = toInteger(body.errcode);
      if (errcode === undefined) throw fail('errcode', 'unexpected', { detail: 'errcode is not a number' });
      if (errcode !== 0) {
        throw fail('errcode', upstreamCodeForErrcode(errcode, prepared.sentAppSecret), { errcode });
      }
    }
    // WeChat answers 200 even for errors: any other status without an errcode is not WeChat talking.
    if (answer.status < 200 || answer.status >= 300) throw fail('errcode', 'unexpected', { detail: status });

    let result: T;
    try {
      result = spec.read(body);
    } catch (error) {
      if (!(error instanceof WireShapeError)) throw error;
      throw fail('errcode', 'unexpected', { cause: error, detail: error.message });
    }
    emit({ api: spec.api, durationMs: now() - started, outcome: 'ok' });
    return result;
  };

  return async <T>(spec: WeChatCallSpec<T>): Promise<T> => {
    const prepared = prepare(target, spec);
    let busy: UpstreamError;
    try {
      return await attempt(spec, prepared);
    } catch (error) {
      if (!(error instanceof UpstreamError && retriable(spec, error))) throw error;
      busy = error;
    }
    // One retry after a short pause: -1 and dropped connections are usually momentary, and a
    // login is waiting on the answer.
    await pause(RETRY_PAUSE_MS * (1 + Math.random()));
    if (spec.idempotent) return attempt(spec, prepared);
    try {
      return await attempt(spec, prepared);
    } catch (error) {
      // WeChat may have spent the code before it answered busy.
      if (error instanceof UpstreamError && (error.code === 'code_used' || error.code === 'code_invalid'))
        throw busy;
      throw error;
    }
  };
}

function retriable(spec: WeChatCallSpec<unknown>, error: UpstreamError): boolean {
  return error.code === 'unavailable' && (spec.idempotent || error.errcode === -1);
}

function prepare(
  target: { origin: string; basePath: string },
  spec: WeChatCallSpec<unknown>,
): PreparedRequest {
  const revealed: string[] = [];
  const reveal = (value: WireValue | number | boolean): string | number | boolean => {
    if (!(value instanceof Secret)) return value;
    const plain = value.reveal();
    if (plain !== '') revealed.push(plain, encodeURIComponent(plain));
    return plain;
  };

  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(spec.query ?? {})) params[key] = String(reveal(value));
  const query = queryString(params);

  let body: string | undefined;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (spec.json !== undefined) {
    body = JSON.stringify(Object.fromEntries(Object.entries(spec.json).map(([k, v]) => [k, reveal(v)])));
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  return {
    api: spec.api,
    origin: target.origin,
    path: `${target.basePath}/${spec.api}${query === '' ? '' : `?${query}`}`,
    method: spec.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    body,
    revealed,
    sentAppSecret: spec.query?.secret !== undefined || spec.json?.secret !== undefined,
  };
}

class WeChatTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * Sends and reads the whole body as text under one deadline.
 *
 * Through undici's dispatch() with a handler that keeps the body's chunks, not request(), which
 * wraps every answer in a body stream and reads it back through it: 45 against 61 to 79
 * microseconds of CPU a call (6 Dec, a loopback loop of 20,000 calls), two calls in every website
 * login (bench/FINDINGS.md).
 */
function send(
  prepared: PreparedRequest,
  options: WeChatCallOptions,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let status = 0;
    let controller: Dispatcher.DispatchController | undefined;
    let expired: Error | undefined;
    // At the deadline the caller has its answer, whatever the request's stage: one still waiting
    // for its connection is aborted as soon as it starts.
    const timer = setTimeout(() => {
      expired = new WeChatTimeoutError(`no complete answer within ${options.timeoutMs} ms`);
      controller?.abort(expired);
      reject(expired);
    }, options.timeoutMs);
    const fail = (error: unknown) => {
      clearTimeout(timer);
      reject(error);
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(started) {
        controller = started;
        if (expired) started.abort(expired);
      },
      onResponseStart(_, statusCode) {
        status = statusCode;
      },
      onResponseData(own, chunk) {
        if (own.aborted) return;
        received += chunk.length;
        if (received > MAX_ANSWER_BYTES) {
          own.abort(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
          return;
        }
        chunks.push(chunk);
      },
      onResponseEnd() {
        clearTimeout(timer);
        resolve({ status, text: Buffer.concat(chunks).toString('utf8') });
      },
      onResponseError(_, error) {
        fail(error);
      },
    };
    try {
      (options.dispatcher ?? outboundDispatcher()).dispatch(
        {
          origin: prepared.origin,
          path: prepared.path,
          method: prepared.method,
          headers: prepared.headers,
          body: prepared.body ?? null,
        },
        handler,
      );
    } catch (error) {
      fail(error);
    }
  });
}

/**
 * The transport error itself when nothing in it (message, stack, nested causes)
 * repeats the query or a secret; otherwise a stand-in naming only its kind. undici's
 * mock errors, for one, quote the full path with its query.
 */
function safeCause(error: unknown, prepared: PreparedRequest): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  if (!leaks(error, prepared, 0)) return error;
  const code = (error as { code?: unknown }).code;
  return new Error(`${error.name}${typeof code === 'string' ? ` ${code}` : ''} (details withheld)`);
}

function leaks(error: Error, prepared: PreparedRequest, depth: number): boolean {
  const text = `${error.message}\n${error.stack ?? ''}`;
  const quotesRequest =
    text.includes(`${prepared.api}?`) || prepared.revealed.some((secret) => text.includes(secret));
  if (quotesRequest) return true;
  if (error.cause === undefined) return false;
  // A cause we cannot read through, or a chain too deep to bother with, is withheld.
  if (depth >= 3 || !(error.cause instanceof Error)) return true;
  return leaks(error.cause, prepared, depth + 1);
}
