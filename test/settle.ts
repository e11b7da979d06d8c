// Checks of "at once" and "stops promptly" that do not read a clock, so they hold on a loaded
// machine: a promise's state after one event-loop turn (no timer waited on), and the CPU time
// the process spent (every thread, workers included: getrusage), which counts work done and
// not how long the scheduler made it wait.

/** The state of `p`, updated as it settles, without awaiting it. */
export function track<T>(p: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const s: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  p.then(
    () => (s.state = 'resolved'),
    (e: unknown) => Object.assign(s, { state: 'rejected', error: e }),
  );
  return s;
}

/** One turn of the event loop: settled promises' handlers and ready I/O run; no timer is waited on. */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** CPU time this process has used so far, all threads, in ms. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
