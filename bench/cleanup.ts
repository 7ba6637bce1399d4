/**
 * Undo steps, run in reverse order of the things they undo; every step runs even when one fails.
 * A step added after run() (the run was interrupted while it was still starting something) runs at
 * once, and run() waits for it too.
 */
export class Cleanup {
  readonly #steps: Array<{ what: string; run: () => Promise<unknown> }> = [];
  #done: Promise<void> | undefined;

  add(what: string, run: () => Promise<unknown>): void {
    if (this.#done) {
      this.#done = this.#done.then(() => attempt(what, run));
      return;
    }
    this.#steps.push({ what, run });
  }

  run(): Promise<void> {
    this.#done ??= (async () => {
      for (const step of this.#steps.reverse()) await attempt(step.what, step.run);
    })();
    return this.#done;
  }
}

async function attempt(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    process.stderr.write(
      `bench: cleanup step "${what}" failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
  }
}
