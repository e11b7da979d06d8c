// The facade: validate → plan → choose a backend → run. Holds per-instance caches
// (block layouts per nCtx) and records which path ran and why.
import { type AttnMode, type Config, type SparseAttentionOptions, makeConfig } from './config.js';
import { ArgumentError, StateError, UnsupportedError, argError } from './errors.js';
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
  checkOut,
} from './plan.js';
import { WasmBackend } from './backends/wasm/wasm-backend.js';
import { WebGpuBackend } from './backends/webgpu/webgpu-backend.js';
import { estimateGpuMs, estimateWasmMs, isSoftwareAdapter } from './cost-model.js';
import { rejectOnAbort } from './abort.js';

/**
 * A WebGPU GPUBuffer, typed structurally so that this package's types need no
 * @webgpu/types: a GPUBuffer fits, and forwardGPU results can be used `as GPUBuffer`.
 */
export interface GpuBufferLike {
  readonly size: number;
  readonly usage: number;
  destroy(): void;
}

/** A WebGPU GPUDevice (structurally; cast with `as GPUDevice` where @webgpu/types is installed). */
export interface GpuDeviceLike {
  readonly queue: object;
  readonly lost: Promise<unknown>;
  createBuffer(descriptor: { size: number; usage: number; mappedAtCreation?: boolean; label?: string }): GpuBufferLike;
  destroy(): void;
}

/** A tensor resident on the GPU: a storage buffer holding [batch, nCtx, nEmbd] f32. */
export interface GpuTensor {
  buffer: GpuBufferLike;
  shape: [number, number, number];
}

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
  /** Work of the visited blocks (what a block kernel computes): the cost model's measure. */
  visitedFlops: number;
  /** The cost model's estimates (ms); webgpu is null until an adapter is known. */
  estimatedMs: { wasm: number; webgpu: number | null };
  /** allowedPairs / (batch · heads · nCtx²). */
  density: number;
}

export interface RunInfo {
  backend: 'wasm' | 'webgpu';
  /** Variant and threads, or adapter. */
  detail: string;
  reason: string;
  ms: number;
  /** Kernel time on the GPU (timestamp queries, options.webgpu.timestamps), when measured. */
  gpuMs?: number;
}

const GEOMETRY_CACHE = 8;

interface Choice {
  backend: 'wasm' | 'webgpu';
  reason: string;
  probeGpu?: boolean;
}

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const fmtFlops = (f: number) => (f >= 1e9 ? `${(f / 1e9).toFixed(2)} GFLOP` : `${(f / 1e6).toFixed(1)} MFLOP`);

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
  private gpu: WebGpuBackend | null = null;
  /** Why 'auto' found no adapter (asked once per instance). */
  private gpuUnavailable: string | null = null;
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
    const choice = this.choose(plan);
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
      blocksVisited: plan.blocksVisited,
      allowedPairs: plan.allowedPairs,
      usefulFlops: plan.usefulFlops,
      visitedFlops: plan.visitedFlops,
      estimatedMs: {
        wasm: estimateWasmMs(plan, this.wasm.threadCount),
        webgpu: this.gpu?.adapterName ? estimateGpuMs(plan, isSoftwareAdapter(this.gpu.adapterName)) : null,
      },
      density: plan.density,
    };
  }

  /** Attention of q, k, v ({ data: Float32Array, shape: [batch, nCtx, nEmbd] }); same shape out. */
  async forward(q: Tensor, k: Tensor, v: Tensor, forwardOptions: ForwardOptions = {}): Promise<Tensor> {
    checkNotDisposed(this.disposed);
    const shape = checkInputs(this.config, q, k, v);
    const plan = this.makePlan(shape, forwardOptions);
    const out = checkOut(forwardOptions.out, shape, [q.data, k.data, v.data]);
    forwardOptions.signal?.throwIfAborted();
    await this.wasm.init();
    checkNotDisposed(this.disposed);
    // createTensor tensors cost the CPU path no copy: the estimate counts only the others.
    const copied = [q.data, k.data, v.data, out].filter((d) => !this.wasm.isResident(d)).length;
    let choice = await this.settle(plan, this.choose(plan, copied), copied);
    checkNotDisposed(this.disposed);
    const t0 = now();
    const inputs = { q: q.data, k: k.data, v: v.data, signal: forwardOptions.signal, out };
    if (choice.backend === 'webgpu') {
      const gpu = this.gpuBackend();
      await this.initGpu(gpu);
      try {
        // A device lost since choose() counts as a failure of this call, not a usage error.
        if (gpu.deadReason) throw new Error(gpu.deadReason);
        const why = gpu.canRun(plan);
        if (why) throw new UnsupportedError(`backend 'webgpu' cannot run this call: ${why}`);
        // An abort rejects at once; a GPU submit cannot be recalled, its result is dropped.
        const data = await rejectOnAbort(gpu.run(plan, inputs), forwardOptions.signal);
        checkNotDisposed(this.disposed);
        this.lastRun = { backend: 'webgpu', detail: gpu.describe(), reason: choice.reason, ms: now() - t0 };
        return { data, shape: [...shape] };
      } catch (e) {
        checkNotDisposed(this.disposed);
        forwardOptions.signal?.throwIfAborted();
        if (!gpu.deadReason && /cannot run this call/.test((e as Error).message)) throw e;
        // The device is not retried: lost, destroyed or failing, this instance now runs on the CPU.
        gpu.deadReason ??= `a GPU call failed (${(e as Error).message})`;
        choice = { backend: 'wasm', reason: `wasm: the webgpu call failed, re-ran on the CPU: ${gpu.deadReason}` };
      }
    }
    await this.wasm.init();
    checkNotDisposed(this.disposed);
    const data = await this.wasm.run(plan, inputs);
    this.lastRun = { backend: 'wasm', detail: this.wasm.describe(), reason: choice.reason, ms: now() - t0 };
    return { data, shape: [...shape] };
  }

  /**
   * GPU-resident attention: q, k, v are storage buffers ([batch, nCtx, nEmbd] f32) on the
   * device this instance uses (options.device, or gpuDevice()); the result is written to
   * `out` or to a new buffer owned by the caller. No upload, no readback. Needs backend
   * 'webgpu' or 'auto'; rejects on GPU errors (there is no CPU copy of the inputs).
   */
  async forwardGPU(
    q: GpuBufferLike,
    k: GpuBufferLike,
    v: GpuBufferLike,
    shape: readonly number[],
    forwardOptions: Omit<ForwardOptions, 'signal' | 'out'> & { out?: GpuBufferLike } = {},
  ): Promise<GpuTensor> {
    checkNotDisposed(this.disposed);
    if (this.config.backend === 'wasm') throw new StateError("forwardGPU needs the GPU path (options.backend is 'wasm')");
    const dims = this.checkShape(shape);
    const plan = this.makePlan(dims, forwardOptions);
    const t0 = now();
    const gpu = await this.gpuReady(plan);
    const buffer = await gpu.runResident(
      plan,
      { q: q as GPUBuffer, k: k as GPUBuffer, v: v as GPUBuffer },
      forwardOptions.out as GPUBuffer | undefined,
    );
    const gpuMs = gpu.lastGpuMs ?? undefined;
    this.lastRun = { backend: 'webgpu', detail: gpu.describe(), reason: 'forwardGPU runs on the GPU', ms: now() - t0, gpuMs };
    return { buffer, shape: dims };
  }

  /** The GPUDevice of the GPU path (acquired on first use); for creating forwardGPU buffers. */
  async gpuDevice(): Promise<GpuDeviceLike> {
    checkNotDisposed(this.disposed);
    const gpu = this.gpuBackend();
    await this.initGpu(gpu);
    return gpu.device! as unknown as GpuDeviceLike;
  }

  /** The same computation on the calling thread (CPU path only), for code that cannot await. */
  forwardSync(q: Tensor, k: Tensor, v: Tensor, forwardOptions: Omit<ForwardOptions, 'signal'> = {}): Tensor {
    checkNotDisposed(this.disposed);
    const shape = checkInputs(this.config, q, k, v);
    const plan = this.makePlan(shape, forwardOptions);
    const t0 = now();
    const out = checkOut(forwardOptions.out, shape, [q.data, k.data, v.data]);
    const data = this.wasm.runSync(plan, { q: q.data, k: k.data, v: v.data, out });
    this.lastRun = { backend: 'wasm', detail: this.wasm.describe(), reason: 'forwardSync runs on the CPU', ms: now() - t0 };
    return { data, shape: [...shape] };
  }

  /**
   * A zeroed tensor of `shape` for q, k, v or `out` whose data lives in the CPU engine's
   * memory where that memory is shared (runtimes with worker threads): forward() then reads
   * it and writes the result in place, with no copy in or out. Elsewhere (no threads, or
   * after dispose) it is an ordinary Float32Array. Any path accepts it like any tensor.
   * Give it back with releaseTensor() when done; engine memory never shrinks, it is reused.
   */
  createTensor(shape: readonly number[]): Tensor {
    checkNotDisposed(this.disposed);
    const dims = this.checkShape(shape);
    const n = dims[0] * dims[1] * dims[2];
    const data = this.config.backend === 'webgpu' ? null : this.wasm.allocTensor(n);
    return { data: data ?? new Float32Array(n), shape: dims };
  }

  /**
   * Returns a createTensor() tensor's memory for reuse (once the call in flight, if any,
   * has settled). Its data must not be used afterwards. False when the tensor is not one of
   * this engine's (an ordinary array: nothing to do).
   */
  releaseTensor(tensor: Tensor): boolean {
    if (tensor === null || typeof tensor !== 'object' || !(tensor.data instanceof Float32Array)) {
      throw argError('tensor', 'a tensor from createTensor()', tensor);
    }
    return this.wasm.releaseTensor(tensor.data);
  }

  /** Releases workers and memory; the instance cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.geometries.clear();
    this.wasm.dispose();
    this.gpu?.dispose();
  }

  /**
   * Which path runs this plan, and why. 'auto' compares the cost model's estimates
   * (src/cost-model.ts): it asks for a GPU only when even a real GPU's best case beats the
   * CPU estimate, then decides on the adapter it got. `probeGpu` says that the decision
   * needs an adapter that has not been asked for yet.
   */
  private choose(plan: Plan, copied = 4): Choice {
    const dead = this.gpu?.deadReason;
    if (this.config.backend === 'webgpu') {
      if (dead) return { backend: 'wasm', reason: `wasm: webgpu was requested but ${dead}; the device is not retried` };
      return { backend: 'webgpu', reason: "webgpu: forced by options.backend = 'webgpu'" };
    }
    if (this.config.backend === 'wasm') return { backend: 'wasm', reason: "wasm: forced by options.backend = 'wasm'" };
    const threads = this.wasm.threadCount;
    const cpuMs = estimateWasmMs(plan, threads, undefined, copied);
    const cpu = `${fmt(cpuMs)} ms estimated on the CPU (${threads} thread${threads > 1 ? 's' : ''}${copied < 4 ? `, ${4 - copied} of q, k, v, out in place` : ''})`;
    if (dead) return { backend: 'wasm', reason: `wasm: ${dead}` };
    if (this.gpuUnavailable) return { backend: 'wasm', reason: `wasm: no usable WebGPU adapter (${this.gpuUnavailable})` };
    const adapter = this.gpu?.adapterName;
    if (!adapter) {
      const best = estimateGpuMs(plan, false);
      if (cpuMs <= best) {
        return { backend: 'wasm', reason: `wasm: ${cpu} <= ${fmt(best)} ms for a GPU at best (upload, readback and compute of ${fmtFlops(plan.visitedFlops)})` };
      }
      return { backend: 'webgpu', probeGpu: true, reason: `webgpu if an adapter is found: ${cpu} > ${fmt(best)} ms for a GPU at best` };
    }
    const software = isSoftwareAdapter(adapter);
    const gpuMs = estimateGpuMs(plan, software);
    const on = `${fmt(gpuMs)} ms estimated on ${software ? 'the software adapter' : 'the GPU'} (${adapter})`;
    if (gpuMs < cpuMs) return { backend: 'webgpu', reason: `webgpu: ${on} < ${cpu}` };
    return { backend: 'wasm', reason: `wasm: ${cpu} <= ${on}` };
  }

  /** Resolves a choice that needs an adapter: asks for one once; a failure is remembered. */
  private async settle(plan: Plan, choice: Choice, copied = 4): Promise<Choice> {
    if (!choice.probeGpu) return choice;
    try {
      await this.initGpu(this.gpuBackend());
    } catch (e) {
      this.gpuUnavailable = (e as Error).message.replace(/^SparseAttention: /, '');
    }
    return this.choose(plan, copied);
  }

  private gpuBackend(): WebGpuBackend {
    this.gpu ??= new WebGpuBackend(this.config, this.config.webgpu);
    return this.gpu;
  }

  private async initGpu(gpu: WebGpuBackend): Promise<void> {
    try {
      await gpu.init();
    } catch (e) {
      throw new UnsupportedError(`backend 'webgpu' is unavailable: ${(e as Error).message.replace(/^SparseAttention: /, '')}`, { cause: e });
    }
    checkNotDisposed(this.disposed);
  }

  /** The GPU backend, initialised and able to run this plan; else a clear Error. */
  private async gpuReady(plan: Plan): Promise<WebGpuBackend> {
    const gpu = this.gpuBackend();
    await this.initGpu(gpu);
    const why = gpu.canRun(plan);
    if (why) throw new UnsupportedError(`backend 'webgpu' cannot run this call: ${why}`);
    return gpu;
  }

  private checkShape(shape: readonly number[]): [number, number, number] {
    checkShape('shape', shape);
    checkHeads(shape, this.config.heads);
    return [shape[0], shape[1], shape[2]];
  }

  private makePlan(shape: [number, number, number], forwardOptions: Pick<ForwardOptions, 'keyLengths'>): Plan {
    if (forwardOptions === null || typeof forwardOptions !== 'object') {
      throw new ArgumentError(`forward options must be an object or undefined (got ${String(forwardOptions)})`);
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
