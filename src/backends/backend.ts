// The one interface every compute path implements. `init` is memoised by the facade;
// `canRun` says why a plan cannot run here (null when it can), so that 'auto' can
// record the reason for every path it skips.
import type { Plan } from '../plan.js';

export interface RunInputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  signal?: AbortSignal;
  /** Result array to fill (forward's `out` option); a new one when absent. */
  out?: Float32Array;
  /** Fraction of the call done, reported while it computes (throttled by the caller). */
  progress?: (fraction: number) => void;
}

export interface Backend {
  readonly name: 'wasm' | 'webgpu';
  /** Acquires what the path needs (modules, workers, a device). Rejects when unavailable. */
  init(): Promise<void>;
  /** null when the plan can run here; else the reason it cannot. */
  canRun(plan: Plan): string | null;
  run(plan: Plan, inputs: RunInputs): Promise<Float32Array>;
  /** Short description for plan() and lastRun (variant, threads, adapter). */
  describe(): string;
  dispose(): void;
}
