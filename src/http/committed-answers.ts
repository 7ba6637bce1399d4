import {
  IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';
import type { WriteBatch } from '../storage/sqlite/write-batch.ts';

/** The writes every answer waits for: the embedded store's, set once the stores are open. */
export interface AnswerGate {
  writes?: Pick<WriteBatch, 'commit'> | undefined;
}

/**
 * Options for `http.createServer` whose responses commit `gate.writes` before their head is
 * written, whoever writes it (koa, oidc-provider, an error page, Node's implicit head at `end()`),
 * so that an answer never confirms a write the embedded store could still lose: a code, a session,
 * a used state (src/storage/sqlite/write-batch.ts).
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
      gate.writes?.commit();
      return typeof reasonOrHeaders === 'string'
        ? super.writeHead(statusCode, reasonOrHeaders, headers)
        : super.writeHead(statusCode, reasonOrHeaders);
    }
  }
  return { IncomingMessage, ServerResponse: GatedResponse };
}
