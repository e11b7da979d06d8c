// Test-only hooks of the CPU path: fault injection and live counters, exported from the
// package as `__testing` (not part of the API, no semver promise). Nothing here runs
// unless a test sets a field; every injected fault applies to the next threaded calls
// and then clears itself. Used by test/faults.test.ts, test/soak.test.ts, scripts/soak.mjs.
import { P, SEQ } from './abi.js';

export type WorkerFault = 'exit-before-barrier' | 'exit-after-barrier';

export const faults = {
  /**
   * The next `count` threaded calls: worker `worker` exits (process.exit in its thread)
   * after packing, before the barrier ('exit-before-barrier': the other workers would wait
   * for it forever without the host's release) or after it, mid-attention. Node only.
   */
  workerExit: null as null | { worker: number; when: WorkerFault; count: number },
  /** The next call's kernel traps (out-of-bounds access) in phase 1 ('pack') or 2 ('attention'). */
  trap: null as null | 'pack' | 'attention',
  /** Called after the pool has posted a call to its workers; `terminate(i)` kills worker i. */
  onRun: null as null | ((terminate: (worker: number) => void) => void),
  /**
   * Overrides the wasm32 memory ceiling (bytes) of every engine, so that splitting and
   * the limit error are tested with small shapes; null = 4 GiB.
   */
  maxMemoryBytes: null as null | number,
};

/** Live counters: workers started and not yet exited, pools; tensors made while a call ran. */
export const counters = { workersAlive: 0, workersStarted: 0, poolsStarted: 0, tensorsDuringCalls: 0 };

/** Takes the worker fault for one call, if any. */
export function takeWorkerFault(): { worker: number; when: WorkerFault } | null {
  const f = faults.workerExit;
  if (!f) return null;
  if (--f.count <= 0) faults.workerExit = null;
  return { worker: f.worker, when: f.when };
}

/** Makes the laid-out call at `params` trap: points sequence 0 past the end of memory. */
export function applyTrap(memory: WebAssembly.Memory, params: number): void {
  const phase = faults.trap;
  if (!phase) return;
  faults.trap = null;
  const i32 = new Int32Array(memory.buffer);
  const seq0 = i32[(params >> 2) + P.seqs] >> 2;
  const outside = memory.buffer.byteLength; // < 4 GiB in tests: every access from here is out of bounds
  if (phase === 'pack') {
    i32[seq0 + SEQ.kSrc] = outside;
  } else {
    i32[seq0 + SEQ.q] = outside;
  }
}
