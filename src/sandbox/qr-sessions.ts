import { randomAlnum } from './ids.ts';
import type { LoginRequest } from './login-request.ts';

/** The QR page's long-poll states and their wx_errcode (§2.1): 408 waiting, 404 scanned, 405 confirmed, 403 cancelled. */
export type QrStatus = 'waiting' | 'scanned' | 'confirmed' | 'cancelled';

export const QR_TTL_MS = 5 * 60_000;

export interface QrSession {
  uuid: string;
  request: LoginRequest;
  status: QrStatus;
  expiresAt: number;
  /** Where the QR page sends the browser once the phone decided (undefined: stay, "declined"). */
  redirectUrl: string | undefined;
  /** The OAuth code, once confirmed (wx_code). */
  code: string | undefined;
}

/** One per QR page shown: lets a phone (the /sandbox/scan page) log the desktop page in. */
export class QrSessionStore {
  readonly #sessions = new Map<string, QrSession>();

  create(request: LoginRequest, now: number): QrSession {
    for (const [uuid, session] of this.#sessions) if (now >= session.expiresAt) this.#sessions.delete(uuid);
    const session: QrSession = {
      uuid: randomAlnum(16),
      request,
      status: 'waiting',
      expiresAt: now + QR_TTL_MS,
      redirectUrl: undefined,
      code: undefined,
    };
    this.#sessions.set(session.uuid, session);
    return session;
  }

  /** undefined when unknown or expired (the page shows 402, "二维码已失效"). */
  get(uuid: string, now: number): QrSession | undefined {
    const session = this.#sessions.get(uuid);
    return session && now < session.expiresAt ? session : undefined;
  }
}
