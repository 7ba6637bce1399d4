import {
  IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';

/** What must happen before any answer's head is written: set once the stores are open. */
export interface AnswerGate {
  beforeHead?: (() => void) | undefined;
}

/**
 * Options for `http.createServer` whose responses run `gate.beforeHead` before their head is
 * written, whoever writes it (koa, oidc-provider, an error page, Node's implicit head at `end()`).
 * The embedded store commits its writes there (src/storage/sqlite/write-batch.ts), so that an
 * answer never confirms a write the store could still lose: a code, a session, a used state.
 */
export function gatedServerOptions(gate: AnswerGate): {
  IncomingMessage: typeof IncomingMessage;
  ServerResponse: typeof ServerResponse<IncomingMessage>;
} {
  class GatedResponse extends ServerResponse<IncomingMessage> {
    override writeHead(
      statusCode: number,
      reasonOrHeaders?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
      headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
    ): this {
      gate.beforeHead?.();
      return typeof reasonOrHeaders === 'string'
        ? super.writeHead(statusCode, reasonOrHeaders, headers)
        : super.writeHead(statusCode, reasonOrHeaders);
    }
  }
  return { IncomingMessage, ServerResponse: GatedResponse };
}
