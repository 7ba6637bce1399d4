import { connect } from 'node:net';

/**
 * A request written byte for byte: fetch and undici refuse, normalise or encode what a hostile
 * client sends (raw non-ASCII bytes in a header, a Host header of junk or none, a method they do
 * not know), so the malformed-input tests write HTTP/1.1 themselves.
 */
export interface RawRequest {
  method?: string;
  /** The request target as sent (latin1: a string's characters below 256 are its bytes). */
  target: string;
  /** In order, repeated names allowed; Buffer values are sent as they are. */
  headers?: Array<[string, string | Buffer]>;
  body?: string | Buffer;
  /** The Host header: the server's own by default, `null` for none. */
  host?: string | Buffer | null;
}

export interface RawAnswer {
  status: number;
  /** Header names in lower case, each with its values in order. */
  headers: Record<string, string[]>;
  body: string;
}

/**
 * Sends one request on a connection of its own (Connection: close) and reads the whole answer. The
 * connection is not half-closed after the request: Node's server stops answering a client that
 * ends its side, which would look like a server that never answered.
 */
export function rawRequest(base: string, request: RawRequest): Promise<RawAnswer> {
  const url = new URL(base);
  const bytes = (value: string | Buffer) => (Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1'));
  const body = request.body === undefined ? undefined : bytes(request.body);
  const host = request.host === undefined ? url.host : request.host;
  const headers: Array<[string, string | Buffer]> = [
    ...(host === null ? [] : [['host', host] as [string, string | Buffer]]),
    ...(request.headers ?? []),
    ...(body === undefined ? [] : [['content-length', String(body.length)] as [string, string]]),
    ['connection', 'close'],
  ];
  const head = Buffer.concat([
    bytes(`${request.method ?? 'GET'} ${request.target} HTTP/1.1\r\n`),
    ...headers.map(([name, value]) => Buffer.concat([bytes(`${name}: `), bytes(value), bytes('\r\n')])),
    bytes('\r\n'),
  ]);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      try {
        resolve(parseAnswer(Buffer.concat(chunks)));
      } catch (error) {
        reject(error);
      }
    });
    socket.write(body ? Buffer.concat([head, body]) : head);
  });
}

function parseAnswer(all: Buffer): RawAnswer {
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no answer, or no complete head: ${JSON.stringify(all.toString('latin1'))}`);
  const [statusLine = '', ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers[name] ??= [];
    headers[name].push(line.slice(colon + 1).trim());
  }
  let body = all.subarray(end + 4);
  if (headers['transfer-encoding']?.[0]?.toLowerCase() === 'chunked') body = dechunk(body);
  return { status: Number(statusLine.split(' ')[1]), headers, body: body.toString('utf8') };
}

function dechunk(chunked: Buffer): Buffer {
  const parts: Buffer[] = [];
  let rest = chunked;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.subarray(0, eol).toString('latin1'), 16);
    if (!(size > 0)) return Buffer.concat(parts);
    parts.push(rest.subarray(eol + 2, eol + 2 + size));
    rest = rest.subarray(eol + 2 + size + 2);
  }
}
