import { request } from 'undici';
import { outboundDispatcher } from '../../http/outbound.ts';

/** Why an avatar was not downloaded: the mirror logs it and keeps the previous picture. */
export type AvatarFetchErrorCode =
  | 'invalid_url'
  | 'host_not_allowed'
  | 'redirect_refused'
  | 'http_status'
  | 'too_large'
  | 'not_image'
  | 'timeout'
  | 'network';

export class AvatarFetchError extends Error {
  override readonly name = 'AvatarFetchError';
  readonly code: AvatarFetchErrorCode;

  constructor(code: AvatarFetchErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface AvatarFetchPolicy {
  /** host or host:port, lowercase; a URL must name one of them exactly (no subdomain wildcards). */
  allowedHosts: readonly string[];
  /** Largest image accepted, bytes. */
  maxBytes: number;
  /** Budget for the whole download, redirects included, milliseconds. */
  timeoutMs: number;
  /** Redirects followed, each to an allowed host only. */
  maxRedirects?: number;
}

export type ImageType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

export interface DownloadedImage {
  /** Sniffed from the bytes (never the server's word alone): no SVG or HTML is ever served back. */
  contentType: ImageType;
  bytes: Uint8Array;
}

const DECLARED_IMAGE = /^image\/(png|jpe?g|gif|webp)\s*(;|$)/i;

/**
 * Downloads an avatar as a hostile URL could make it: only http(s) to an allowed host, redirects
 * followed only to allowed hosts, a size cap enforced while reading (a lying Content-Length does not
 * help), one deadline for everything, and an image type both declared and found in the bytes.
 * Throws AvatarFetchError; the message names the host at most, never the whole URL.
 */
export async function fetchAvatar(url: string, policy: AvatarFetchPolicy): Promise<DownloadedImage> {
  const signal = AbortSignal.timeout(policy.timeoutMs);
  const maxRedirects = policy.maxRedirects ?? 3;
  let current = checkedUrl(url, policy);
  for (let hop = 0; ; hop++) {
    const response = await send(current, policy, signal);
    if (response.statusCode >= 300 && response.statusCode < 400) {
      discard(response);
      const location = headerValue(response.headers.location);
      if (!location || hop >= maxRedirects)
        throw new AvatarFetchError('redirect_refused', `too many or empty redirects from ${current.host}`);
      current = checkedUrl(new URL(location, current).href, policy, 'redirect_refused');
      continue;
    }
    if (response.statusCode !== 200) {
      discard(response);
      throw new AvatarFetchError('http_status', `${current.host} answered ${response.statusCode}`);
    }
    return readImage(response, current.host, policy, signal);
  }
}

/**
 * Whether `raw` is an address the mirror would download from (http or https, no credentials, an
 * allowed host): the only kind of WeChat avatar URL ever published as it is, when no copy exists.
 */
export function isAllowedAvatarUrl(raw: string, policy: Pick<AvatarFetchPolicy, 'allowedHosts'>): boolean {
  try {
    checkedUrl(raw, policy);
    return true;
  } catch {
    return false;
  }
}

/** host or host:port as the allow-list spells it: default ports left out, lowercase. */
export function hostOf(url: URL): string {
  return url.host.toLowerCase();
}

function checkedUrl(
  raw: string,
  policy: Pick<AvatarFetchPolicy, 'allowedHosts'>,
  refusal: AvatarFetchErrorCode = 'host_not_allowed',
): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AvatarFetchError('invalid_url', 'not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new AvatarFetchError('invalid_url', `scheme ${url.protocol} refused`);
  if (url.username || url.password) throw new AvatarFetchError('invalid_url', 'credentials in URL refused');
  if (!policy.allowedHosts.includes(hostOf(url)))
    throw new AvatarFetchError(refusal, `host ${url.host} is not an allowed avatar host`);
  return url;
}

type Response = Awaited<ReturnType<typeof request>>;

async function send(url: URL, policy: AvatarFetchPolicy, signal: AbortSignal): Promise<Response> {
  try {
    return await request(url, {
      method: 'GET',
      headers: { accept: 'image/png, image/jpeg, image/gif, image/webp' },
      signal,
      dispatcher: outboundDispatcher(),
      headersTimeout: policy.timeoutMs,
      bodyTimeout: policy.timeoutMs,
    });
  } catch (error) {
    throw transportError(error, url.host, signal);
  }
}

async function readImage(
  response: Response,
  host: string,
  policy: AvatarFetchPolicy,
  signal: AbortSignal,
): Promise<DownloadedImage> {
  const declared = headerValue(response.headers['content-type']) ?? '';
  if (!DECLARED_IMAGE.test(declared)) {
    discard(response);
    throw new AvatarFetchError('not_image', `${host} sent ${declared.slice(0, 40) || 'no content type'}`);
  }
  const length = Number(headerValue(response.headers['content-length']) ?? Number.NaN);
  if (length > policy.maxBytes) {
    discard(response);
    throw new AvatarFetchError('too_large', `${host} announced ${length} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body) {
      total += (chunk as Buffer).length;
      if (total > policy.maxBytes) {
        discard(response);
        throw new AvatarFetchError('too_large', `${host} sent more than ${policy.maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof AvatarFetchError) throw error;
    throw transportError(error, host, signal);
  }
  const bytes = new Uint8Array(Buffer.concat(chunks));
  const contentType = sniffImage(bytes);
  if (!contentType) throw new AvatarFetchError('not_image', `${host} sent bytes that are not an image`);
  return { contentType, bytes };
}

/** The image type the bytes start with, if they are one we serve. */
export function sniffImage(bytes: Uint8Array): ImageType | undefined {
  const starts = (...sig: number[]) => sig.every((b, i) => bytes[i] === b);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}

function transportError(error: unknown, host: string, signal: AbortSignal): AvatarFetchError {
  const code = (error as { code?: string }).code;
  if (signal.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return new AvatarFetchError('timeout', `${host} did not answer in time`);
  return new AvatarFetchError('network', `${host} could not be reached (${code ?? 'error'})`);
}

/** Drops the rest of a body without reading it (undici reports the abort as an error event). */
function discard(response: Response): void {
  response.body.on('error', () => {});
  response.body.destroy();
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
