/** Undo steps in reverse order of the things they undo; every step runs even when one fails. */
export class Cleanup {
  readonly #steps: Array<{ what: string; run: () => Promise<unknown> }> = [];
  #done: Promise<void> | undefined;

  add(what: string, run: () => Promise<unknown>): void {
    this.#steps.push({ what, run });
  }

  run(): Promise<void> {
    this.#done ??= (async () => {
      for (const step of this.#steps.reverse()) {
        try {
          await step.run();
        } catch (error) {
          process.stderr.write(
            `bench: cleanup step "${step.what}" failed: ${error instanceof Error ? error.message : String(error)}\n`,
          );
        }
      }
    })();
    return this.#done;
  }
}
