/** Bad input to the sandbox (a nickname, a colour, a fault): the control API answers 400 with the message. */
export class SandboxInputError extends Error {
  override name = 'SandboxInputError';
}
