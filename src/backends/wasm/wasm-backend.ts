// The CPU path: AssemblyScript kernels in WebAssembly (relaxed SIMD, SIMD or scalar),
// threaded over a shared memory where the runtime allows. Engines are shared by every
// SparseAttention instance of the process (one pool of workers, not one per instance)
// and released when the last instance using them is disposed.
import type { Config } from '../../config.js';
import { type Plan, bandBlockSize } from '../../plan.js';
import type { Backend, Capabilities, Estimate, RunInputs, TensorData } from '../backend.js';
import { estimateWasmMs } from '../../cost-model.js';
import { type RunRequest, WasmEngine } from './engine.js';
import { maskRecordWords } from './masks.js';
import { type CacheGeometry, CpuKvCache } from './kv-cache.js';
import { MemoryLimitError } from '../../errors.js';
import { tablesTooLarge } from '../../layout/block-layout.js';
import { checkStillWhole } from '../../whole.js';
import { counters, faults } from './faults.js';
import type { Variant } from './kernels.js';
import { splitInTwo } from './split.js';
import type { Modifiers } from '../../config-mods.js';

interface Shared { engine: WasmEngine; users: number }
const engines = new Map<string, Shared>();

function acquire(threaded: boolean, variant: Variant | undefined): WasmEngine {
  const key = `${variant ?? 'best'}:${threaded}`;
  let shared = engines.get(key);
  if (!shared) {
    shared = { engine: WasmEngine.create(threaded, variant), users: 0 };
    engines.set(key, shared);
  }
  shared.users++;
  return shared.engine;
}

function release(engine: WasmEngine): void {
  for (const [key, shared] of engines) {
    if (shared.engine !== engine) continue;
    if (--shared.users === 0) {
      engines.delete(key);
      engine.dispose();
    }
    return;
  }
}

/** Default worker count: the machine's cores, at most 8. */
export async function defaultThreads(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  let cores = nav?.hardwareConcurrency ?? 0;
  if (!cores && typeof (globalThis as { process?: unknown }).process !== 'undefined') {
    try {
      const os = await import('node:os');
      cores = os.availableParallelism?.() ?? os.cpus().length;
    } catch {
      cores = 1;
    }
  }
  return Math.max(1, Math.min(8, cores || 1));
}

// A call too large for one engine call (wasm32: 4 GiB) runs as parts, one after another
// (see split.ts); the engine rejects before writing anything, so a failed try costs nothing.
async function runSplit(engine: WasmEngine, req: RunRequest): Promise<TensorData> {
  try {
    return await engine.run(req);
  } catch (e) {
    // A call against a KV cache is not split (its K and V live in the cache).
    const parts = e instanceof MemoryLimitError && !req.cache ? splitParts(req) : null;
    if (!parts) throw e;
    const out = req.out ?? (req.q instanceof Uint16Array ? new Uint16Array(req.q.length) : new Float32Array(req.q.length));
    for (const p of parts) p.place(await runSplit(engine, { ...req, ...p, out: undefined, progress: undefined }), out);
    return out;
  }
}

function splitParts(req: RunRequest) {
  checkStillWhole({ 'q.data': req.q, 'k.data': req.k, 'v.data': req.v, out: req.out }, req.q.length);
  return splitInTwo(req.plan, req.q, req.k, req.v, req.lse, req.mods);
}

function runSplitSync(engine: WasmEngine, req: RunRequest): TensorData {
  try {
    return engine.runSync(req);
  } catch (e) {
    const parts = e instanceof MemoryLimitError ? splitParts(req) : null;
    if (!parts) throw e;
    const out = req.out ?? (req.q instanceof Uint16Array ? new Uint16Array(req.q.length) : new Float32Array(req.q.length));
    for (const p of parts) p.place(runSplitSync(engine, { ...req, ...p, out: undefined }), out);
    return out;
  }
}

/**
 * KV-cache calls with at most this much work (about 0.1 ms on one core of the development
 * machine) run on the calling thread: posting to the workers and waking the caller again costs as much
 * (0.1–0.3 ms measured for a 1-token decode step of the sparse-lm example), and blocking the
 * event loop for less than that is the cheaper choice.
 */
const INLINE_FLOPS = 2e6;

/** wasm32's ceiling (engine.ts's MAX_BYTES). */
const WASM32_BYTES = 2 ** 32;

/**
 * Refuses, before any layout is built, a call whose block tables cannot fit wasm32 memory
 * however it is split: every part writes all the plan's layouts (rowPtr, cols, maskIds and
 * kernel mask records, as engine.ts lays them out) beside at least q, k, v and the output of
 * one head of one batch item. A call that passes may still be split, or refused by the
 * engine, which counts everything.
 */
function checkTables(plan: Plan): void {
  const limit = Math.min(WASM32_BYTES, faults.maxMemoryBytes ?? WASM32_BYTES);
  const why = tablesTooLarge(
    [plan.batch, plan.nCtx, plan.nEmbd],
    plan.layouts,
    (l) => 4 * (l.nQB + 1) + 8 * Number(l.entries) + 4 * l.maskCount * maskRecordWords(l.blockSize),
    {
      where: 'WebAssembly memory',
      setBy: 'wasm32',
      limit,
      beside: {
        bytes: 16 * plan.nCtx * plan.headDim,
        what: 'q, k, v and the output of one head of one batch item (the least a split call holds)',
        advice: 'Use a shorter nCtx, or the webgpu backend',
      },
    },
  );
  if (why) throw new MemoryLimitError(why.message, why.needed, limit);
}

/**
 * Test-only (exported as `__testing`, not part of the API): fault injection (faults.ts),
 * live worker counters, and the engines alive now with their memory and workers.
 */
export const testing = {
  faults,
  counters,
  engines: () =>
    [...engines.entries()].map(([key, s]) => ({
      key,
      users: s.users,
      threaded: s.engine.threaded,
      memoryBytes: s.engine.memoryBytes,
      workers: s.engine.workers,
    })),
};

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));

export class WasmBackend implements Backend {
  readonly id = 'wasm' as const;
  readonly capabilities: Capabilities = { sync: true, resident: true, gpuBuffers: false, modifiers: true, packed: true };
  /** The CPU path is always usable (workers that cannot start fall back to the calling thread). */
  readonly unavailable = null;
  /** Threaded engine for forward(); single-threaded engine for forwardSync(). */
  private engine: WasmEngine | null = null;
  private syncEngine: WasmEngine | null = null;
  private threads = 1;
  /** The last forward() ran on the calling thread (see INLINE_FLOPS). */
  private lastInline = false;
  private initialising: Promise<void> | null = null;

  constructor(
    private readonly requestedThreads: number | undefined,
    private readonly variant: Variant | undefined,
    /** The instance's score modifiers (src/config-mods.ts), applied by the kernel to every call. */
    private readonly mods?: Modifiers,
  ) {}

  init(): Promise<void> {
    this.initialising ??= (async () => {
      this.threads = this.requestedThreads ?? (await defaultThreads());
      // Threaded whenever the runtime allows, even for one thread (see WasmEngine.run).
      this.acquireEngine();
      if (!this.engine!.threaded) this.threads = 1;
    })();
    return this.initialising;
  }

  private acquireEngine(): WasmEngine {
    return (this.engine ??= acquire(true, this.variant));
  }

  /** A KV cache in the threaded engine's memory (see kv-cache.ts). */
  createCache(geo: CacheGeometry): CpuKvCache {
    return new CpuKvCache(this.acquireEngine(), geo);
  }

  /** A zeroed array in the threaded engine's memory (see WasmEngine.allocTensor), or null. */
  allocTensor(length: number): Float32Array | null {
    return this.acquireEngine().allocTensor(length);
  }

  releaseTensor(data: Float32Array): boolean {
    return this.engine?.releaseTensor(data) ?? false;
  }

  /** Whether `data` is a live createTensor() tensor of the threaded engine (read or written in place). */
  isResident(data: TensorData | undefined): boolean {
    return data instanceof Float32Array && !!this.engine?.isTensor(data);
  }

  /** Worker threads a forward() call uses (a guess from the runtime until init). */
  get threadCount(): number {
    if (this.engine) return this.threads;
    const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
    return this.requestedThreads ?? Math.max(1, Math.min(8, nav?.hardwareConcurrency ?? 2));
  }

  canRun(): string | null {
    return null;
  }

  /**
   * Block size for the band modes: bandBlockSize() in plan.ts (an L1-cache argument for the
   * CPU kernel), for the rows a sequence has: with GQA each holds heads / kvHeads query
   * heads' rows (group.ts; the band modes give every head one layout).
   */
  bandBlockSize(config: Config, seqLen: number): number {
    return bandBlockSize(config.blocksize, seqLen * (config.heads / config.kvHeads));
  }

  estimate(plan: Plan, copied: number): Estimate {
    const threads = this.threadCount;
    const ms = estimateWasmMs(plan, threads, undefined, copied);
    const inPlace = copied < 4 ? `, ${4 - copied} of q, k, v, out in place` : '';
    return { ms, bestCase: false, text: `${fmtMs(ms)} ms estimated on the CPU (${threads} thread${threads > 1 ? 's' : ''}${inPlace})` };
  }

  async run(plan: Plan, inputs: RunInputs): Promise<TensorData> {
    checkTables(plan);
    // A step against a KV cache (decode: called once per token and layer) that is smaller
    // than a worker round trip runs here. The kernel computes a query block's live rows only
    // (rounded up to 4 lanes): a call with fewer queries than a block does that fraction of
    // its visited blocks' work.
    const rows = Math.min(plan.blockSize, Math.ceil(plan.nCtx / 4) * 4);
    this.lastInline = !!inputs.cache && (plan.visitedFlops * rows) / plan.blockSize <= INLINE_FLOPS;
    return runSplit(this.engine!, { plan, ...inputs, mods: this.mods, threads: this.threads, inline: this.lastInline });
  }

  /** Computes on the calling thread. */
  runSync(plan: Plan, inputs: RunInputs): TensorData {
    checkTables(plan);
    this.syncEngine ??= acquire(false, this.variant);
    return runSplitSync(this.syncEngine, { plan, ...inputs, mods: this.mods, threads: 1 });
  }

  /** Why the last forward() ran differently than described (workers unavailable), else null. */
  get note(): string | null {
    const why = this.engine?.workersUnavailable;
    return why ? `${why}; ran on the calling thread` : null;
  }

  describe(): string {
    const e = this.engine ?? this.syncEngine;
    if (!e) return 'wasm (not initialised)';
    if (this.lastInline && this.engine) return `wasm ${e.variant}, the calling thread (a call smaller than a worker round trip)`;
    const n = this.engine?.threaded && !this.engine.workersUnavailable ? this.threads : 1;
    return `wasm ${e.variant}, ${n} thread${n > 1 ? 's' : ''}`;
  }

  /** Linear memory held by this backend's engines. */
  get memoryBytes(): number {
    return (this.engine?.memoryBytes ?? 0) + (this.syncEngine?.memoryBytes ?? 0);
  }

  dispose(): void {
    if (this.engine) release(this.engine);
    if (this.syncEngine) release(this.syncEngine);
    this.engine = this.syncEngine = null;
  }
}
