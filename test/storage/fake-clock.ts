/** A clock tests move by hand, so expiry is tested without waiting. */
export interface FakeClock {
  now(): Date;
  advance(seconds: number): void;
}

export function createFakeClock(start = new Date('2026-11-25T08:00:00.000Z')): FakeClock {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    advance(seconds) {
      current += seconds * 1000;
    },
  };
}
