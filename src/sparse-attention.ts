// The facade: validate → plan → choose a backend → run. Holds per-instance caches
// (block layouts per nCtx) and records which path ran and why.
import { type AttnMode, type Config, type Dtype, type SparseAttentionOptions, checkKeys, makeConfig } from './config.js';
import {
  ArgumentError,
  DeviceLostError,
  DisposedError,
  KernelError,
  SparseAttentionError,
  StateError,
  UnsupportedError,
  abortError,
  argError,
  checkPositiveInt,
  throwIfAborted,
} from './errors.js';
import { type Geometry, type Plan, buildGeometry, buildPlan, checkNotDisposed, packedSegments } from './plan.js';
import type { Backend, BackendId, PackedSegment, TensorData } from './backends/backend.js';
import { isBandMode, sequenceGroups } from './geometry.js';
import { hasScoreModifiers } from './config-mods.js';
import { type Choice, choose } from './choice.js';
import {
  type ForwardOptions,
  type HalfArray,
  type HalfTensor,
  type Tensor,
  type TensorArray,
  type TensorResult,
  checkHeads,
  checkKeyLengths,
  checkSeqLengths,
  checkOut,
  checkShape,
  readCallOptions,
  readInputs,
  result,
  type CallInputs,
  type CallOptions,
} from './tensors.js';
import { KvCache, type KvCacheOptions, checkCacheOptions } from './kv-cache.js';
import { WasmBackend } from './backends/wasm/wasm-backend.js';
import { WebGpuBackend } from './backends/webgpu/webgpu-backend.js';
import type { GpuKvCache } from './backends/webgpu/kv-cache.js';
import { rejectOnAbort } from './abort.js';
import { progressReporter } from './progress.js';

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
  backend: BackendId;
  /** Why that path (and why not the others). */
  reason: string;
  shape: [number, number, number];
  mode: AttnMode;
  causal: boolean;
  headDim: number;
  /** Block size of the layout the chosen backend's kernels run. */
  blockSize: number;
  /** Independent attention problems (batch × heads, × L groups for 'strided'). */
  sequences: number;
  /** Key blocks visited, summed over query blocks and layouts. */
  blocksVisited: number;
  allowedPairs: number;
  usefulFlops: number;
  /** Work of the visited blocks (what a block kernel computes): the cost model's measure. */
  visitedFlops: number;
  /** The cost model's estimate per backend (ms); null where unknown (a GPU before its adapter) or unusable. */
  estimatedMs: Record<BackendId, number | null>;
  /** allowedPairs / (batch · heads · nCtx²). */
  density: number;
  /** Storage of q, k, v, the output and a cache (options.dtype). */
  storage: Dtype;
  /** Arithmetic of products, softmax and sums: f32 for every storage. */
  compute: 'float32';
}

export interface RunInfo {
  backend: BackendId;
  /** Variant and threads, or adapter. */
  detail: string;
  reason: string;
  ms: number;
  /** Kernel time on the GPU (timestamp queries, options.webgpu.timestamps), when measured. */
  gpuMs?: number;
  /** Storage the call's tensors (and cache) had, and the arithmetic it ran in. */
  storage: Dtype;
  compute: 'float32';
}

const GEOMETRY_CACHE = 8;

/**
 * Backends an instance owns, held apart from the instance so that an instance the caller
 * forgot to dispose() releases them when it is garbage-collected.
 */
interface Owned {
  backends: Backend[];
}
const forgotten = typeof FinalizationRegistry === 'undefined'
  ? null
  : new FinalizationRegistry<Owned>((owned) => {
    for (const b of owned.backends) b.dispose();
  });

/** A failure of the device itself (lost, out of memory, a failing submit), after which another backend re-runs the call. */
function isDeviceFailure(e: unknown): boolean {
  return !(e instanceof SparseAttentionError) || e instanceof DeviceLostError || e instanceof KernelError;
}

export class SparseAttention {
  readonly heads: number;
  readonly attnMode: AttnMode;
  readonly localAttnCtx: number | undefined;
  readonly blocksize: number;
  /** Which path the last completed call ran on, and why. */
  lastRun: RunInfo | null = null;

  private readonly config: Config;
  /** Block layouts per (nCtx, block size): each backend plans on its own blocks. */
  private readonly geometries = new Map<string, Geometry>();
  /** Backends in order of preference on equal estimates: the CPU first. */
  private readonly owned: Owned;
  /** Why a backend is not used by this instance: it failed to initialise, or a call on it failed (not retried). */
  private readonly excluded = new Map<BackendId, string>();
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
    this.owned = {
      backends: [new WasmBackend(this.config.threads, this.config.wasmVariant, this.config.mods), new WebGpuBackend(this.config, this.config.webgpu)],
    };
    forgotten?.register(this, this.owned, this.owned);
  }

  /** What a call with this input shape would compute, on which path, and why. */
  /** `options.nK`: keys per batch item when they differ from the queries (cross-attention, a cache). */
  plan(shape: readonly number[], forwardOptions: Pick<ForwardOptions, 'keyLengths' | 'seqLengths'> & { nK?: number } = {}): PlanInfo {
    checkNotDisposed(this.disposed);
    const dims = this.checkShape(shape);
    const opts = checkKeys('plan options', forwardOptions ?? {}, ['keyLengths', 'seqLengths', 'nK']);
    const nK = opts.nK === undefined ? dims[1] : checkPositiveInt('nK', opts.nK);
    const keyLengths = checkKeyLengths(opts.keyLengths, dims[0], nK);
    const seqLengths = checkSeqLengths(opts.seqLengths, dims, nK);
    const needs = this.modsNeeded(undefined);
    const { backend, plan, reason } = this.choose(dims, keyLengths, 4, nK, needs, seqLengths);
    // A forced backend that will refuse this call: plan() refuses it as forward() would (what
    // an uninitialised device can run is known only once it is; forward() then says).
    if (this.config.backend === backend.id) {
      const why = this.modsRefusal(backend, needs) ?? backend.dtypeUnsupported?.(plan.dtype) ?? (backend.estimate(plan, 4).bestCase ? null : backend.canRun(plan));
      if (why) throw new UnsupportedError(`backend '${backend.id}' cannot run this call: ${why}`);
    }
    const groups = sequenceGroups(plan);
    const estimatedMs = {} as Record<BackendId, number | null>;
    for (const b of this.owned.backends) {
      const est = this.usable(b) || b.dtypeUnsupported?.(this.config.dtype) || this.packedRefusal(b, seqLengths) ? null : b.estimate(this.planOn(b, dims, keyLengths, nK, seqLengths), 4);
      estimatedMs[b.id] = est && !est.bestCase ? est.ms : null;
    }
    return {
      backend: backend.id,
      reason,
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
      estimatedMs,
      density: plan.density,
      ...this.numerics(),
    };
  }

  /**
   * Attention of q, k, v ({ data: Float32Array, shape: [batch, nCtx, nEmbd] }, or ONNX
   * Runtime tensors); same shape out. The tensors' data references and shapes are taken
   * once, now: replacing `q.data` or editing `q.shape` afterwards does not affect this call
   * (changing the arrays' contents before the call settles does).
   */
  async forward(q: Tensor, k: Tensor, v: Tensor, forwardOptions?: ForwardOptions): Promise<TensorResult>;
  /** dtype 'float16': halves in, halves of q's type out. */
  async forward<D extends HalfArray>(q: HalfTensor<D>, k: HalfTensor, v: HalfTensor, forwardOptions?: ForwardOptions): Promise<TensorResult<D>>;
  async forward(q: Tensor | HalfTensor, k: Tensor | HalfTensor, v: Tensor | HalfTensor, forwardOptions: ForwardOptions = {}): Promise<TensorResult<TensorArray>> {
    checkNotDisposed(this.disposed);
    const call = readInputs(this.config, q, k, v);
    const opts = readCallOptions(forwardOptions);
    if (opts.cache !== undefined) return this.forwardCached(call, opts);
    const { shape } = call;
    const nK = call.kvShape[1];
    const keyLengths = checkKeyLengths(opts.keyLengths, shape[0], nK);
    const seqLengths = checkSeqLengths(opts.seqLengths, shape, nK);
    const out = checkOut(opts.out, shape, [call.q, call.k, call.v], call.float16Array);
    const lse = checkLse(opts.lse, shape[0] * this.config.heads * shape[1]);
    const needs = this.modsNeeded(lse);
    const signal = opts.signal;
    throwIfAborted(signal);
    const progress = progressReporter(opts.onProgress);
    const cpu = this.resident();
    await cpu?.init();
    this.checkLive();
    // Tensors resident in a backend's memory cost it no copy: the estimates count only the others.
    const copied = [call.q, call.k, call.v, out].filter((d) => !cpu?.isResident?.(d)).length;
    let choice = await this.settle(this.choose(shape, keyLengths, copied, nK, needs, seqLengths), shape, keyLengths, copied, nK, needs, seqLengths);
    this.checkLive();
    throwIfAborted(signal);
    const t0 = now();
    const inputs = { q: call.q, k: call.k, v: call.v, signal, out, progress: progress.report, lse };
    for (;;) {
      const { backend, plan } = choice;
      try {
        // a forced backend without the storage type: refused before it looks for a device
        const noDtype = backend.dtypeUnsupported?.(plan.dtype);
        if (noDtype) throw new UnsupportedError(`backend '${backend.id}' cannot run this call: ${noDtype}`);
        await this.initBackend(backend);
        // A device lost since choose() counts as a failure of this call, not a usage error.
        if (backend.unavailable) throw new DeviceLostError(backend.unavailable);
        const why = this.modsRefusal(backend, needs) ?? backend.canRun(plan);
        if (why) throw new UnsupportedError(`backend '${backend.id}' cannot run this call: ${why}`);
        // An abort rejects at once; work already submitted cannot be recalled, its result is dropped.
        const data = await rejectOnAbort(plan.seqLengths && backend.runPacked ? backend.runPacked(plan, this.packedSegments(backend, plan, shape), inputs) : backend.run(plan, inputs), signal);
        this.checkLive();
        progress.done();
        const note = backend.note;
        this.lastRun = { backend: backend.id, detail: backend.describe(), reason: note ? `${choice.reason}; ${note}` : choice.reason, ms: now() - t0, ...this.numerics() };
        return result(data, shape, call.float16Array, opts.out);
      } catch (e) {
        this.checkLive();
        throwIfAborted(signal);
        // Usage errors (a detached input, a call the path cannot run) are the caller's: the
        // backend stays in use. Only a failure of the device itself moves this instance on.
        const next = isDeviceFailure(e) ? this.fallbackFrom(backend, e as Error) : null;
        if (!next) throw e;
        choice = { backend: next, plan: this.planOn(next, shape, keyLengths, nK, seqLengths), reason: `${next.id}: the ${backend.id} call failed, re-ran on ${next.id === 'wasm' ? 'the CPU' : next.id}: ${this.excluded.get(backend.id)}` };
      }
    }
  }

  /**
   * A KV cache for generation: `forward(q, kNew, vNew, { cache })` appends kNew, vNew
   * ([batch, nNew, kvHeads·headDim]) at positions cache.length … and attends q ([batch, nNew,
   * heads·headDim]) to every cached key, aligned bottom-right, so that a prefill chunk and a
   * decode step are the same call. Lives in the CPU engine's memory, in the kernel's packed
   * form: a call packs nothing and an appended token writes only its own rows. With backend
   * 'webgpu' it lives in GPU buffers of the instance's device: a call uploads q and the new
   * rows and reads back the output, nothing else. Every mode ('strided' keeps each residue
   * mod L contiguous; the block-pattern modes read the layout rows of the call's positions).
   */
  createCache(options: KvCacheOptions): KvCache {
    checkNotDisposed(this.disposed);
    const { batch, capacity } = checkCacheOptions(options);
    const { mode, kvHeads, localAttnCtx: L } = this.config;
    const regroup = mode === 'strided' ? L : 0;
    if (this.config.backend === 'webgpu') {
      const gpu = this.gpuBackend();
      const noDtype = gpu.dtypeUnsupported(this.config.dtype);
      if (noDtype) throw new UnsupportedError(`backend 'webgpu' cannot hold this KV cache: ${noDtype}`);
      const half = this.config.dtype === 'float16';
      // the device is acquired by the first call (forward() awaits init before the first append)
      return new KvCache(this.owned, (headDim: number) => gpu.createCache({ batch, capacity, kvHeads, headDim, regroup, half }), batch, capacity, 'webgpu');
    }
    const cpu = this.owned.backends.find((b): b is WasmBackend => b instanceof WasmBackend)!;
    const half = this.config.dtype === 'float16';
    const make = (headDim: number) => cpu.createCache({ batch, capacity, kvHeads, headDim, regroup, half });
    return new KvCache(this.owned, make, batch, capacity);
  }

  private async forwardCached(call: CallInputs, opts: CallOptions): Promise<TensorResult<TensorArray>> {
    const cache = opts.cache;
    if (!(cache instanceof KvCache) || cache.owner !== this.owned) {
      throw argError('cache', "a KvCache from this instance's createCache()", cache);
    }
    if (opts.keyLengths !== undefined) throw argError('keyLengths', "undefined with a cache (the cache's length counts the keys)", opts.keyLengths);
    if (opts.seqLengths !== undefined) throw argError('seqLengths', 'undefined with a cache (one sequence per batch item)', opts.seqLengths);
    const [batch, nQ] = call.shape;
    const nNew = call.kvShape[1];
    if (batch !== cache.batch) throw argError('q.shape[0]', `the cache's batch (${cache.batch})`, batch);
    if (nQ !== nNew) throw argError('q.shape[1]', `the number of new keys (${nNew}): one query per new token, at its position`, nQ);
    const out = checkOut(opts.out, call.shape, [call.q, call.k, call.v], call.float16Array);
    const signal = opts.signal;
    throwIfAborted(signal);
    const progress = progressReporter(opts.onProgress);
    const lse = checkLse(opts.lse, batch * this.config.heads * nQ);
    if (cache.path === 'webgpu') return this.forwardGpuCached(call, cache, out, opts.out, signal, progress, lse);
    const cpu = this.owned.backends.find((b) => b instanceof WasmBackend) as WasmBackend;
    const refused = this.modsRefusal(cpu, this.modsNeeded(lse));
    if (refused) throw new UnsupportedError(`backend 'wasm' cannot run this call (its KV cache is on the CPU): ${refused}`);
    await cpu.init();
    this.checkLive();
    throwIfAborted(signal);
    const headDim = call.shape[2] / this.config.heads;
    const { store, base } = (cache as KvCache<ReturnType<WasmBackend['createCache']>>).begin(call.k, call.v, nNew, headDim);
    let ok = false;
    try {
      const plan = this.planOn(cpu, call.shape, null, base + nNew);
      const t0 = now();
      const inputs = { q: call.q, k: call.k, v: call.v, signal, out, progress: progress.report, cache: store.regions(), lse };
      const data = await rejectOnAbort(cpu.run(plan, inputs), signal);
      this.checkLive();
      progress.done();
      ok = true;
      const reason = `${cpu.id}: a KV cache call (${nNew} new of ${base + nNew} tokens) runs where the cache lives`;
      this.lastRun = { backend: cpu.id, detail: cpu.describe(), reason, ms: now() - t0, ...this.numerics() };
      return result(data, call.shape, call.float16Array, opts.out);
    } finally {
      cache.end(base, ok);
    }
  }

  /** forward() against a cache in GPU buffers: appends the new rows there, uploads q, reads back the output. */
  private async forwardGpuCached(call: CallInputs, cache: KvCache, out: TensorData | undefined, given: unknown, signal: AbortSignal | undefined, progress: ReturnType<typeof progressReporter>, lse: Float32Array | undefined): Promise<TensorResult<TensorArray>> {
    const gpu = this.gpuBackend();
    await this.initBackend(gpu);
    throwIfAborted(signal);
    const unusable = this.usable(gpu);
    if (unusable) throw new UnsupportedError(`backend 'webgpu' cannot run this call (its KV cache is on the GPU): ${unusable}`);
    const nNew = call.kvShape[1];
    const { store, base } = (cache as KvCache<GpuKvCache>).begin(call.k, call.v, nNew, call.shape[2] / this.config.heads);
    let ok = false;
    try {
      const plan = this.planOn(gpu, call.shape, null, base + nNew);
      const why = gpu.canRunWith(plan, true);
      if (why) throw new UnsupportedError(`backend 'webgpu' cannot run this call: ${why}`);
      const t0 = now();
      const inputs = { q: call.q, k: call.k, v: call.v, signal, out, progress: progress.report, lse };
      const data = await rejectOnAbort(gpu.runCached(plan, inputs, store), signal);
      this.checkLive();
      progress.done();
      ok = true;
      const reason = `webgpu: a KV cache call (${nNew} new of ${base + nNew} tokens) runs where the cache lives${gpu.note ? `; ${gpu.note}` : ''}`;
      this.lastRun = { backend: gpu.id, detail: gpu.describe(), reason, ms: now() - t0, ...this.numerics() };
      return result(data, call.shape, call.float16Array, given);
    } finally {
      cache.end(base, ok);
    }
  }

  /** forwardGPU against a GPU KV cache: k and v are the new rows' buffers, copied into the cache on the device. */
  private async forwardGPUCached(q: GpuBufferLike, k: GpuBufferLike, v: GpuBufferLike, dims: [number, number, number], cache: unknown, out: GpuBufferLike | undefined): Promise<GpuTensor> {
    if (!(cache instanceof KvCache) || cache.owner !== this.owned || cache.path !== 'webgpu') {
      throw argError('cache', "a KvCache from this instance's createCache() (with backend 'webgpu')", cache);
    }
    const [batch, nNew] = dims;
    if (batch !== cache.batch) throw argError('shape[0]', `the cache's batch (${cache.batch})`, batch);
    const gpu = this.gpuBackend();
    await this.initBackend(gpu);
    const unusable = this.usable(gpu);
    if (unusable) throw new UnsupportedError(`backend 'webgpu' cannot run this call: ${unusable}`);
    const t0 = now();
    const { store, base } = (cache as KvCache<GpuKvCache>).begin(null, null, nNew, dims[2] / this.config.heads);
    let ok = false;
    try {
      const plan = this.planOn(gpu, dims, null, base + nNew);
      const why = gpu.canRunWith(plan, true);
      if (why) throw new UnsupportedError(`backend 'webgpu' cannot run this call: ${why}`);
      const buffer = await gpu.runResidentCached(plan, q as GPUBuffer, k as GPUBuffer, v as GPUBuffer, store, base, out as GPUBuffer | undefined);
      this.checkLive();
      ok = true;
      const gpuMs = gpu.lastGpuMs ?? undefined;
      this.lastRun = { backend: gpu.id, detail: gpu.describe(), reason: `forwardGPU runs on the GPU, against its KV cache (${nNew} new of ${base + nNew} tokens)${gpu.note ? `; ${gpu.note}` : ''}`, ms: now() - t0, gpuMs, ...this.numerics() };
      return { buffer, shape: dims };
    } finally {
      cache.end(base, ok);
    }
  }

  /**
   * GPU-resident attention: q, k, v are storage buffers ([batch, nCtx, nEmbd] f32) on the
   * device this instance uses (options.device, or gpuDevice()); the result is written to
   * `out` or to a new buffer owned by the caller. No upload, no readback. Needs backend
   * 'webgpu' or 'auto'; rejects on GPU errors (there is no CPU copy of the inputs). k and v
   * carry kvHeads heads; `nK`: they hold nK rows per batch item (queries aligned bottom-right).
   * `cache` (a GPU KV cache of this instance): k and v are the new rows, copied into the cache
   * on the device, and q attends to every cached key.
   */
  async forwardGPU(
    q: GpuBufferLike,
    k: GpuBufferLike,
    v: GpuBufferLike,
    shape: readonly number[],
    forwardOptions: Pick<ForwardOptions, 'keyLengths' | 'cache'> & { out?: GpuBufferLike; nK?: number } = {},
  ): Promise<GpuTensor> {
    checkNotDisposed(this.disposed);
    if (this.config.backend === 'wasm') throw new StateError("forwardGPU needs the GPU path (options.backend is 'wasm')");
    const dims = this.checkShape(shape);
    const opts = readCallOptions(forwardOptions, ['keyLengths', 'out', 'cache', 'nK']);
    // nK: k and v hold nK rows per batch item (cross-attention; queries aligned bottom-right)
    const nKOpt = (forwardOptions as { nK?: unknown } | undefined)?.nK;
    const nK = nKOpt === undefined ? dims[1] : checkPositiveInt('nK', nKOpt);
    if (opts.cache !== undefined) {
      if (opts.keyLengths !== undefined) throw argError('keyLengths', "undefined with a cache (the cache's length counts the keys)", opts.keyLengths);
      return this.forwardGPUCached(q, k, v, dims, opts.cache, opts.out as GpuBufferLike | undefined);
    }
    const keyLengths = checkKeyLengths(opts.keyLengths, dims[0], nK);
    const t0 = now();
    const gpu = this.gpuBackend();
    await this.initBackend(gpu);
    const plan = this.planOn(gpu, dims, keyLengths, nK);
    const why = this.usable(gpu) ?? gpu.canRun(plan);
    if (why) throw new UnsupportedError(`backend 'webgpu' cannot run this call: ${why}`);
    const buffer = await gpu.runResident(
      plan,
      { q: q as GPUBuffer, k: k as GPUBuffer, v: v as GPUBuffer },
      opts.out as GPUBuffer | undefined,
    );
    this.checkLive();
    const gpuMs = gpu.lastGpuMs ?? undefined;
    this.lastRun = { backend: gpu.id, detail: gpu.describe(), reason: `forwardGPU runs on the GPU${gpu.note ? `; ${gpu.note}` : ''}`, ms: now() - t0, gpuMs, ...this.numerics() };
    return { buffer, shape: dims };
  }

  /** The GPUDevice of the GPU path (acquired on first use); for creating forwardGPU buffers. */
  async gpuDevice(): Promise<GpuDeviceLike> {
    checkNotDisposed(this.disposed);
    const gpu = this.gpuBackend();
    await this.initBackend(gpu);
    return gpu.device! as unknown as GpuDeviceLike;
  }

  /** The same computation on the calling thread (CPU path only), for code that cannot await. */
  forwardSync(q: Tensor, k: Tensor, v: Tensor, forwardOptions?: Omit<ForwardOptions, 'signal' | 'onProgress'>): TensorResult;
  forwardSync<D extends HalfArray>(q: HalfTensor<D>, k: HalfTensor, v: HalfTensor, forwardOptions?: Omit<ForwardOptions, 'signal' | 'onProgress'>): TensorResult<D>;
  forwardSync(q: Tensor | HalfTensor, k: Tensor | HalfTensor, v: Tensor | HalfTensor, forwardOptions: Omit<ForwardOptions, 'signal' | 'onProgress'> = {}): TensorResult<TensorArray> {
    checkNotDisposed(this.disposed);
    const call = readInputs(this.config, q, k, v);
    const opts = readCallOptions(forwardOptions, ['keyLengths', 'seqLengths', 'out', 'lse']);
    const keyLengths = checkKeyLengths(opts.keyLengths, call.shape[0], call.kvShape[1]);
    const seqLengths = checkSeqLengths(opts.seqLengths, call.shape, call.kvShape[1]);
    const lse = checkLse(opts.lse, call.shape[0] * this.config.heads * call.shape[1]);
    const backend = this.owned.backends.find((b) => b.capabilities.sync && b.runSync)!;
    const refused = this.modsRefusal(backend, this.modsNeeded(lse));
    if (refused) throw new UnsupportedError(`forwardSync runs on the CPU: ${refused}`);
    const plan = this.planOn(backend, call.shape, keyLengths, call.kvShape[1], seqLengths);
    const t0 = now();
    const out = checkOut(opts.out, call.shape, [call.q, call.k, call.v], call.float16Array);
    const data = backend.runSync!(plan, { q: call.q, k: call.k, v: call.v, out, lse });
    this.lastRun = { backend: backend.id, detail: backend.describe(), reason: 'forwardSync runs on the CPU', ms: now() - t0, ...this.numerics() };
    return result(data, call.shape, call.float16Array, opts.out);
  }

  /**
   * A zeroed tensor of `shape` for q, k, v or `out` whose data lives in the CPU engine's
   * memory where that memory is shared (runtimes with worker threads): forward() then reads
   * it and writes the result in place, with no copy in or out. Elsewhere (no threads, or
   * after dispose) it is an ordinary Float32Array. Any path accepts it like any tensor.
   * Give it back with releaseTensor() when done; engine memory never shrinks, it is reused.
   */
  createTensor(shape: readonly number[]): TensorResult {
    checkNotDisposed(this.disposed);
    // q and the result have heads·headDim columns, k and v kvHeads·headDim: either shape
    checkShape('shape', shape);
    const dims: [number, number, number] = [shape[0], shape[1], shape[2]];
    if (dims[2] % this.config.kvHeads !== 0) {
      throw argError('nEmbd', `a multiple of kvHeads (${this.config.kvHeads}: q's heads·headDim or k's kvHeads·headDim); the shape is [${dims.join(', ')}]`, dims[2]);
    }
    const n = dims[0] * dims[1] * dims[2];
    if (this.config.dtype === 'float16') throw new UnsupportedError("createTensor holds f32 values: with dtype 'float16' pass Float16Array or Uint16Array tensors");
    const data = this.config.backend === 'webgpu' ? null : this.resident()?.allocTensor!(n);
    return result(data ?? new Float32Array(n), dims) as TensorResult;
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
    return this.resident()?.releaseTensor!(tensor.data) ?? false;
  }

  /**
   * Releases workers and memory; the instance cannot be used afterwards. A call in flight
   * rejects with a DisposedError (code ERR_DISPOSED) or completes; no worker outlives it.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    forgotten?.unregister(this.owned);
    this.geometries.clear();
    for (const b of this.owned.backends) b.dispose();
  }

  /** The GPU backend (for the webgpu-only entry points and tests). */
  private get gpu(): WebGpuBackend | null {
    return this.gpuBackend();
  }

  private gpuBackend(): WebGpuBackend {
    return this.owned.backends.find((b): b is WebGpuBackend => b.capabilities.gpuBuffers)!;
  }

  /** The backend whose memory holds createTensor() tensors. */
  private resident(): Backend | undefined {
    return this.owned.backends.find((b) => b.capabilities.resident);
  }

  /** Throws DisposedError when dispose() ran while this call was waiting. */
  private checkLive(): void {
    if (this.disposed) throw new DisposedError('this instance was disposed while the call was in flight; the call was dropped');
  }

  /** Why this instance does not use `b` (device lost, failed to initialise, a failed call); null when usable. */
  private usable(b: Backend): string | null {
    return b.unavailable ?? this.excluded.get(b.id) ?? null;
  }

  /** A packed call's sequences for runPacked(): each its own plan on `backend`'s blocks (batch 1, keys cut at keyLengths[0]). */
  private packedSegments(backend: Backend, plan: Plan, shape: [number, number, number]): PackedSegment[] {
    return packedSegments(plan).map(([start, len, keys]) => ({ start, plan: this.planOn(backend, [1, len, shape[2]], keys < len ? Int32Array.of(keys) : null) }));
  }

  /** plan() and lastRun's storage and compute. */
  private numerics(): { storage: Dtype; compute: 'float32' } {
    return { storage: this.config.dtype, compute: 'float32' };
  }

  /** Whether a call uses score modifiers or asks for lse: only backends with capabilities.modifiers run it. */
  private modsNeeded(lse: Float32Array | undefined): boolean {
    const m = this.config.mods;
    return lse !== undefined || m.scale !== null || hasScoreModifiers(m);
  }

  /** Why `b` cannot run a call that needs the modifiers (`needs`); null when it can. */
  private modsRefusal(b: Backend, needs: boolean): string | null {
    if (!needs || b.capabilities.modifiers) return null;
    return `${b.id} does not run the score modifiers (scale, softcap, alibi, sinks) or the lse output yet`;
  }

  /** Which backend runs this call, on its own blocks, and why (src/choice.ts). */
  private choose(shape: [number, number, number], keyLengths: Int32Array | null, copied = 4, nK = shape[1], needs = false, seqLengths: Int32Array | null = null): Choice {
    if (this.config.backend !== 'auto') {
      const forced = this.owned.backends.find((b) => b.id === this.config.backend)!;
      const refused = this.modsRefusal(forced, needs) ?? this.packedRefusal(forced, seqLengths);
      if (refused) throw new UnsupportedError(`backend '${forced.id}' (options.backend) cannot run this call: ${refused}`);
    }
    return choose({
      backends: this.owned.backends,
      forced: this.config.backend,
      usable: (b) => this.usable(b) ?? this.modsRefusal(b, needs) ?? this.packedRefusal(b, seqLengths),
      planOn: (b) => this.planOn(b, shape, keyLengths, nK, seqLengths),
      copied,
    });
  }

  /** Why `b` cannot run packed sequences (`seqLengths`); null when it can or the call has none. */
  private packedRefusal(b: Backend, seqLengths: Int32Array | null): string | null {
    return seqLengths && !b.capabilities.packed ? `${b.id} does not run packed sequences (seqLengths)` : null;
  }

  /** Resolves a choice that rests on a best case: initialises that backend once (a failure is remembered), then chooses again. */
  private async settle(choice: Choice, shape: [number, number, number], keyLengths: Int32Array | null, copied: number, nK: number, needs = false, seqLengths: Int32Array | null = null): Promise<Choice> {
    if (!choice.probe) return choice;
    try {
      await this.initBackend(choice.backend);
    } catch (e) {
      if (e instanceof DisposedError) throw e;
      this.excluded.set(choice.backend.id, `no usable device (${(e as Error).message.replace(/^SparseAttention: backend '\w+' is unavailable: /, '')})`);
    }
    return this.choose(shape, keyLengths, copied, nK, needs, seqLengths);
  }

  /**
   * After a device failure on `failed` (lost, out of memory, a failing submit): the CPU
   * backend, which always runs, re-runs the call and `failed` is not used again by this
   * instance. A failure of the CPU backend itself is the call's error (null).
   */
  private fallbackFrom(failed: Backend, e: Error): Backend | null {
    const cpu = this.owned.backends.find((b) => b.capabilities.sync)!;
    if (failed === cpu) return null;
    if (!this.excluded.has(failed.id)) {
      this.excluded.set(failed.id, failed.unavailable ?? `a ${failed.id} call failed (${e.message.replace(/^SparseAttention: /, '')})`);
    }
    return cpu;
  }

  /** init() of a backend, its failure as an UnsupportedError (code ERR_UNSUPPORTED) naming it. */
  private async initBackend(b: Backend): Promise<void> {
    try {
      await b.init();
    } catch (e) {
      if (e instanceof DisposedError) throw e;
      throw new UnsupportedError(`backend '${b.id}' is unavailable: ${(e as Error).message.replace(/^SparseAttention: /, '')}`, { cause: e });
    }
    this.checkLive();
  }

  private checkShape(shape: readonly number[]): [number, number, number] {
    checkShape('shape', shape);
    checkHeads(shape, this.config.heads);
    return [shape[0], shape[1], shape[2]];
  }

  /**
   * The call planned on `backend`'s block geometry: for the band modes each backend picks
   * the block size its kernels run best (the result does not depend on it); other modes run
   * the user's blocksize. Geometries are cached per (nCtx, block size).
   */
  private planOn(backend: Backend, shape: [number, number, number], keyLengths: Int32Array | null, nK = shape[1], seqLengths: Int32Array | null = null): Plan {
    const nCtx = shape[1];
    const { mode, localAttnCtx: L } = this.config;
    let block = this.config.blocksize;
    // The kernels' query and key blocks are square: the query rows decide (a decode step's one
    // query fills an 8-row block, not a 32-row one).
    if (isBandMode(mode)) block = backend.bandBlockSize(this.config, mode === 'strided' ? Math.ceil(nCtx / L) : nCtx, shape[2] / this.config.heads);
    const key = `${nCtx}/${nK}/${block}`;
    let geometry = this.geometries.get(key);
    if (geometry) {
      this.geometries.delete(key); // re-insert: most recently used last
    } else {
      geometry = buildGeometry(this.config, nCtx, isBandMode(mode) ? block : undefined, nK);
      if (this.geometries.size >= GEOMETRY_CACHE) this.geometries.delete(this.geometries.keys().next().value!);
    }
    this.geometries.set(key, geometry);
    return buildPlan(this.config, geometry, shape, keyLengths, this.config.kvHeads, seqLengths);
  }
}

/** forward's `lse` option: undefined, or a Float32Array of batch·heads·nQ floats. */
function checkLse(lse: unknown, n: number): Float32Array | undefined {
  if (lse === undefined) return undefined;
  if (!(lse instanceof Float32Array) || lse.length !== n) throw argError('lse', `a Float32Array of batch·heads·nQ = ${n} floats`, lse);
  return lse;
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
