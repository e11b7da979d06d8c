// forward()'s onProgress: fractions from the paths (CPU: finished kernel tasks, GPU:
// finished chunks), passed on at most every MIN_INTERVAL_MS and only when they grow, then
// 1 once when the call completes. A callback that throws cannot fail the call.
const MIN_INTERVAL_MS = 50; // ~20 calls a second at most

export interface Progress {
  /** What the paths call with a fraction in [0, 1]; undefined when nobody listens. */
  report: ((fraction: number) => void) | undefined;
  /** The call completed: reports 1. */
  done(): void;
}

export function progressReporter(onProgress: ((fraction: number) => void) | undefined): Progress {
  if (!onProgress) return { report: undefined, done: () => {} };
  let last = 0;
  let lastAt = -Infinity;
  const call = (f: number) => {
    try {
      onProgress(f);
    } catch {
      // the caller's callback failing is not the call failing
    }
  };
  return {
    report: (fraction) => {
      const f = Math.min(1, Math.max(0, fraction));
      const t = typeof performance !== 'undefined' ? performance.now() : Date.now();
      if (f <= last || f >= 1 || t - lastAt < MIN_INTERVAL_MS) return;
      last = f;
      lastAt = t;
      call(f);
    },
    done: () => call(1),
  };
}
