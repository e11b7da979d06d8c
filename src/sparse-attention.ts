// The facade: validate → plan → choose a backend → run. Holds per-instance caches
// (block layouts per nCtx) and records which path ran and why.
import { type AttnMode, type Config, type SparseAttentionOptions, makeConfig } from './config.js';
import { stateError } from './errors.js';
import {
  type ForwardOptions,
  type Geometry,
  type Plan,
  type Tensor,
  buildGeometry,
  buildPlan,
  checkHeads,
  checkInputs,
  checkKeyLengths,
  checkNotDisposed,
  checkShape,
} from './plan.js';
import { WasmBackend } from './backends/wasm/wasm-backend.js';

export interface PlanInfo {
  /** The path forward() would take for this shape. */
  backend: 'wasm' | 'webgpu';
  /** Why that path (and why not the other). */
  reason: string;
  shape: [number, number, number];
  mode: AttnMode;
  causal: boolean;
  headDim: number;
  /** Block size of the layout the kernels run. */
  blockSize: number;
  /** Independent attention problems (batch × heads, × L groups for 'strided'). */
  sequences: number;
  /** Key blocks visited, summed over query blocks and layouts. */
  blocksVisited: number;
  allowedPairs: number;
  usefulFlops: number;
  /** allowedPairs / (batch · heads · nCtx²). */
  density: number;
}

export interface RunInfo {
  backend: 'wasm' | 'webgpu';
  /** Variant and threads, or adapter. */
  detail: string;
  reason: string;
  ms: number;
}

const GEOMETRY_CACHE = 8;

export class SparseAttention {
  readonly heads: number;
  readonly attnMode: AttnMode;
  readonly localAttnCtx: number | undefined;
  readonly blocksize: number;
  /** Which path the last completed call ran on, and why. */
  lastRun: RunInfo | null = null;

  private readonly config: Config;
  private readonly geometries = new Map<number, Geometry>();
  private readonly wasm: WasmBackend;
  private disposed = false;

  constructor(
    heads: number,
    attnMode: AttnMode,
    localAttnCtx?: number,
    blocksize = 32,
    options?: SparseAttentionOptions,
  ) {
    this.config = makeConfig(heads, attnMode, localAttnCtx, blocksize, options);
    this.heads = this.config.heads;
    this.attnMode = this.config.mode;
    this.localAttnCtx = this.config.localAttnCtx || undefined;
    this.blocksize = this.config.blocksize;
    this.wasm = new WasmBackend(this.config.threads, this.config.wasmVariant);
  }

  /** What a call with this input shape would compute, on which path, and why. */
  plan(shape: readonly number[], forwardOptions: ForwardOptions = {}): PlanInfo {
    checkNotDisposed(this.disposed);
    const dims = this.checkShape(shape);
    const plan = this.makePlan(dims, forwardOptions);
    const choice = this.choose();
    let blocksVisited = 0;
    for (let h = 0; h < plan.heads; h++) blocksVisited += plan.layouts[plan.headLayout[h]].cols.length;
    const groups = plan.regroup > 0 ? Math.min(plan.regroup, plan.nCtx) : 1;
    return {
      backend: choice.backend,
      reason: choice.reason,
      shape: dims,
      mode: plan.mode,
      causal: plan.causal,
      headDim: plan.headDim,
      blockSize: plan.blockSize,
      sequences: plan.batch * plan.heads * groups,
      blocksVisited: blocksVisited * (plan.regroup > 0 ? groups : 1),
      allowedPairs: plan.allowedPairs,
      usefulFlops: plan.usefulFlops,
      density: plan.density,
    };
  }

  /** Attention of q, k, v ({ data: Float32Array, shape: [batch, nCtx, nEmbd] }); same shape out. */
  async forward(q: Tensor, k: Tensor, v: Tensor, forwardOptions: ForwardOptions = {}): Promise<Tensor> {
    checkNotDisposed(this.disposed);
    const shape = checkInputs(this.config, q, k, v);
    const plan = this.makePlan(shape, forwardOptions);
    forwardOptions.signal?.throwIfAborted();
    const choice = this.choose();
    const t0 = now();
    await this.wasm.init();
    checkNotDisposed(this.disposed);
    const data = await this.wasm.run(plan, { q: q.data, k: k.data, v: v.data, signal: forwardOptions.signal });
    this.lastRun = { backend: 'wasm', detail: this.wasm.describe(), reason: choice.reason, ms: now() - t0 };
    return { data, shape: [...shape] };
  }

  /** The same computation on the calling thread (CPU path only), for code that cannot await. */
  forwardSync(q: Tensor, k: Tensor, v: Tensor, forwardOptions: Omit<ForwardOptions, 'signal'> = {}): Tensor {
    checkNotDisposed(this.disposed);
    const shape = checkInputs(this.config, q, k, v);
    const plan = this.makePlan(shape, forwardOptions);
    const t0 = now();
    const data = this.wasm.runSync(plan, { q: q.data, k: k.data, v: v.data });
    this.lastRun = { backend: 'wasm', detail: this.wasm.describe(), reason: 'forwardSync runs on the CPU', ms: now() - t0 };
    return { data, shape: [...shape] };
  }

  /** Releases workers and memory; the instance cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.geometries.clear();
    this.wasm.dispose();
  }

  private choose(): { backend: 'wasm' | 'webgpu'; reason: string } {
    if (this.config.backend === 'webgpu') {
      throw stateError("backend 'webgpu' is not available in this build (use 'wasm' or 'auto')");
    }
    if (this.config.backend === 'wasm') return { backend: 'wasm', reason: "wasm: forced by options.backend = 'wasm'" };
    return { backend: 'wasm', reason: 'wasm: the only path in this build' };
  }

  private checkShape(shape: readonly number[]): [number, number, number] {
    checkShape('shape', shape);
    checkHeads(shape, this.config.heads);
    return [shape[0], shape[1], shape[2]];
  }

  private makePlan(shape: [number, number, number], forwardOptions: ForwardOptions): Plan {
    if (forwardOptions === null || typeof forwardOptions !== 'object') {
      throw new Error(`SparseAttention: forward options must be an object or undefined (got ${String(forwardOptions)})`);
    }
    const keyLengths = checkKeyLengths(forwardOptions.keyLengths, shape[0], shape[1]);
    const nCtx = shape[1];
    let geometry = this.geometries.get(nCtx);
    if (geometry) {
      this.geometries.delete(nCtx); // re-insert: most recently used last
    } else {
      geometry = buildGeometry(this.config, nCtx);
      if (this.geometries.size >= GEOMETRY_CACHE) this.geometries.delete(this.geometries.keys().next().value!);
    }
    this.geometries.set(nCtx, geometry);
    return buildPlan(this.config, geometry, shape, keyLengths);
  }
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
