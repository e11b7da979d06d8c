// The one interface every compute path implements, and the facade's only view of a path.
// A backend says what it can do (capabilities), what it would cost (estimate), which block
// geometry it runs (bandBlockSize: the plan is built with the chosen backend's blocks, so
// plan(), the cost model and the kernels describe the same work), and why it cannot run a
// plan (canRun) or at all (unavailable). Adding a backend is adding an entry to the list
// in sparse-attention.ts; the facade has no `if` per backend.
import type { Config } from '../config.js';
import type { Plan } from '../plan.js';

/** Backend ids, as in options.backend, plan().backend, lastRun.backend and estimatedMs. */
export type BackendId = 'wasm' | 'webgpu';

/** Where a backend's KV cache keeps a call's K and V (byte offsets in its memory) and how its regions are laid. */
export interface CacheRegions {
  kAt: number;
  vAt: number;
  /** Regions per (batch item, K/V head): L for 'strided' (one per residue), else 1. */
  groups: number;
  /** Rows per region. */
  rows: number;
  kvHeads: number;
  /** The cache stores halves (dtype 'float16'): 2 bytes a value. */
  half: boolean;
}

/**
 * A tensor's values as a backend takes them: f32, or IEEE half bits (dtype 'float16'; the
 * facade hands a Float16Array to the backends as a Uint16Array over the same memory).
 */
export type TensorData = Float32Array | Uint16Array;

export interface RunInputs {
  q: TensorData;
  k: TensorData;
  v: TensorData;
  signal?: AbortSignal;
  /** Result array to fill (forward's `out` option), of q's type; a new one when absent. */
  out?: TensorData;
  /** Fraction of the call done, reported while it computes (throttled by the caller). */
  progress?: (fraction: number) => void;
  /** K and V are read from a KV cache of this backend (k and v unused). */
  cache?: CacheRegions;
  /** (capabilities.modifiers) Each row's natural-log logsumexp, [batch][heads][nQ], written here. */
  lse?: Float32Array;
}

export interface Capabilities {
  /** runSync(): computes on the calling thread (forwardSync). */
  readonly sync: boolean;
  /** allocTensor()/releaseTensor()/isResident(): tensors in the backend's memory, read and written in place. */
  readonly resident: boolean;
  /** runResident()/device: GPUBuffers in and out (forwardGPU). */
  readonly gpuBuffers: boolean;
  /**
   * Score modifiers (softcap, ALiBi, sinks, a user scale) and the lse output (RunInputs.lse):
   * absent or false, the facade does not give this backend a call that asks for them.
   */
  readonly modifiers?: boolean;
  /**
   * Packed sequences (plan.seqLengths): run() takes them (the CPU kernel's sequences with
   * offsets), or runPacked() runs each sequence's own plan. Absent or false: not given such a call.
   */
  readonly packed?: boolean;
}

/** One packed sequence (forward's seqLengths) for runPacked(): its first token and its own plan (batch 1). */
export interface PackedSegment {
  start: number;
  plan: Plan;
}

export interface Estimate {
  /** Milliseconds the cost model expects for the plan. */
  ms: number;
  /** The estimate in words for plan().reason and lastRun.reason. */
  text: string;
  /**
   * The backend is not initialised: `ms` is the best case of any device of its kind, and
   * init() (e.g. asking for an adapter) is worth trying only if that best case wins.
   */
  bestCase: boolean;
}

export interface Backend {
  readonly id: BackendId;
  readonly capabilities: Capabilities;
  /** Why this backend cannot run anything any more (device lost or failed); null while usable. */
  readonly unavailable: string | null;
  /** Acquires what the path needs (modules, workers, a device); memoised. Rejects when unavailable. */
  init(): Promise<void>;
  /** Block size this backend runs the band modes at ('all', 'local', 'strided' do not depend on it). */
  bandBlockSize(config: Config, seqLen: number, headDim: number): number;
  /** null when the plan can run here; else the reason it cannot. */
  canRun(plan: Plan): string | null;
  /** Why this backend runs no call of the storage type `dtype` (every dtype when absent: null). */
  dtypeUnsupported?(dtype: Plan['dtype']): string | null;
  /** Cost of the plan; `copied`: how many of q, k, v and out are copied in or out (0–4). */
  estimate(plan: Plan, copied: number): Estimate;
  /** The result, of the inputs' type (a Uint16Array of halves for dtype 'float16'). */
  run(plan: Plan, inputs: RunInputs): Promise<TensorData>;
  /** Packed sequences (capabilities.packed) as one plan per sequence; absent: run() takes plan.seqLengths itself. */
  runPacked?(plan: Plan, segments: readonly PackedSegment[], inputs: RunInputs): Promise<TensorData>;
  /** Short description for lastRun.detail (variant, threads, adapter). */
  describe(): string;
  /** How the last run differed from describe() (e.g. workers could not start), for lastRun.reason; else null. */
  readonly note?: string | null;
  /** Releases workers, memory, buffers. */
  dispose(): void;
  // Optional capabilities (see `capabilities`):
  runSync?(plan: Plan, inputs: RunInputs): TensorData;
  allocTensor?(length: number): Float32Array | null;
  releaseTensor?(data: Float32Array): boolean;
  isResident?(data: TensorData | undefined): boolean;
}
