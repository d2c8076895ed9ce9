/**
 * The one seam through which src/ reads time and sets timers (eslint.config.js refuses Date.now,
 * setTimeout and setInterval anywhere else), so that tests can drive it (tap's t.clock, a clock of
 * their own) and production uses the real thing.
 */
export type Timer = ReturnType<typeof setTimeout>;
export type Interval = ReturnType<typeof setInterval>;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer | undefined): void;
  /** Optional for clocks of tests that only drive timeouts; systemClock has it (see every()). */
  setInterval?(fn: () => void, ms: number): Interval;
  clearInterval?(timer: Interval | undefined): void;
}

export const systemClock: Required<Clock> = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => {
    if (t !== undefined) clearTimeout(t);
  },
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => {
    if (t !== undefined) clearInterval(t);
  },
};

/**
 * Run `fn` every `ms` on `clock` until the returned function is called: the clock's own interval
 * where it has one, else a chain of timeouts (a test clock that only has setTimeout). Unref'd: a
 * periodic task never keeps the process alive.
 */
export function every(clock: Clock, ms: number, fn: () => void): () => void {
  if (clock.setInterval !== undefined) {
    const t = clock.setInterval(fn, ms);
    (t as { unref?: () => void }).unref?.();
    return () => clock.clearInterval?.(t);
  }
  let stopped = false;
  let t: Timer | undefined;
  const tick = (): void => {
    if (stopped) return;
    fn();
    t = clock.setTimeout(tick, ms);
    (t as { unref?: () => void }).unref?.();
  };
  t = clock.setTimeout(tick, ms);
  (t as { unref?: () => void }).unref?.();
  return () => {
    stopped = true;
    clock.clearTimeout(t);
  };
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as the signal aborts. */
export function delay(ms: number, signal?: AbortSignal, clock: Clock = systemClock): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
