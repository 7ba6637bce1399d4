/**
 * Seconds an Interaction stays findable after oidc-provider destroys it (issue 6).
 *
 * Why: oidc-provider's resume (GET /auth/:uid) destroys the Interaction first, then issues the code
 * (or starts the next interaction) and saves the session. An instance that dies in between leaves
 * the browser's reload, which the load balancer sends to a surviving instance, without an
 * Interaction: "try again", and the person scans the QR code again. Within the grace the reload
 * resumes as if it were the first request.
 *
 * Why a grace is safe (oidc-provider 9, lib/actions/authorization/resume.js):
 * - every answer of a resume clears the resume cookie (path /auth/<uid>), so a browser that got
 *   the answer cannot resume the same interaction again ("authorization request has expired");
 * - a successful resume of an existing session gives it a new id and deletes the old session at
 *   once (Session keeps deleting at once), so a replay with the cookies from before a completed
 *   resume arrives with a fresh session and fails "interaction session and authentication session
 *   mismatch" whenever the interaction recorded a logged-in session;
 * - what is left is the replay, with the cookies from before, of a resume whose answer never
 *   arrived: exactly the browser's reload this grace is for. Where the interaction recorded no
 *   session (a first login), anyone holding those cookies could resume once more within the
 *   grace: hence seconds, not the interaction's remaining life. (The same mismatch check refuses
 *   a reload when the dying instance had already saved the renewed session: the grace covers the
 *   window before that, which holds the code issuance.)
 * The grace never lengthens a life that is already shorter.
 */
export const INTERACTION_DESTROY_GRACE_SECONDS = 10;

/** How long destroy(id) lets an artifact of `model` live on: undefined means it is deleted at once. */
export function destroyGraceSeconds(model: string): number | undefined {
  return model === 'Interaction' ? INTERACTION_DESTROY_GRACE_SECONDS : undefined;
}

/**
 * How long a destroyed Session's id stays refused, seconds (every adapter keeps a tombstone):
 * oidc-provider saves the session a request loaded once the request ends (lib/shared/session.js),
 * so a request that loaded it before a logout destroyed it (an application's silent prompt=none
 * check, another tab) wrote it back, and the person was still logged in after the logout page said
 * they were not (an outside review, at two instances: in 15 to 40 of 60 overlapping logouts). Session
 * ids are random and never reused, so a destroyed one is never saved again while its tombstone lasts:
 * longer than any request that could have loaded it lives.
 */
export const SESSION_TOMBSTONE_SECONDS = 600;

/** Whether destroy(id) of `model` leaves a tombstone that a later upsert of the id respects. */
export function leavesTombstone(model: string): boolean {
  return model === 'Session';
}
