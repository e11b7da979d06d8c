// The GPU path: shaders/bsattn_fwd.wgsl through WebGPU. One device per instance (the
// caller's, or one requested from the runtime), pipelines cached by their compile-time
// parameters, buffers pooled per role and reused across calls. A call whose tensors
// exceed one storage binding runs in chunks of batch items or heads. Any GPU error or
// device loss during a call rejects it; the facade then re-runs it on the CPU.
/// <reference types="@webgpu/types" />
import type { Config, WebGpuOptions } from '../../config.js';
import type { Plan } from '../../plan.js';
import type { Backend, Capabilities, Estimate, PackedSegment, RunInputs, TensorData } from '../backend.js';
import { estimateGpuMs, getCalibration, isSoftwareAdapter } from '../../cost-model.js';
import { layoutId } from '../../geometry.js';
import { ArgumentError, DeviceLostError, DisposedError, KernelError, UnsupportedError, abortError } from '../../errors.js';
import { checkStillWhole } from '../../whole.js';
import { type GpuContext, acquireDevice, acquireShared, releaseShared } from './device.js';
import { type Chunk, type KvAddressing, buildDispatch, buildDispatchX, buildMeta, layoutWordCount, planChunks, uploadedKv } from './marshal.js';
import { GpuKvCache, type GpuCacheGeometry } from './kv-cache.js';
import { tablesTooLarge } from '../../layout/block-layout.js';
import { ProgramCache, type Storage, decodeLanes, decodeRows, programTesting } from './program.js';
import { type Variant, chooseVariant, paddedHeadDim, tallTilesApply } from './variants.js';
import { hasScoreModifiers, scaleOf } from '../../config-mods.js';

// GPUBufferUsage / GPUMapMode values: Node has no such globals unless 'webgpu' installs them.
const MAP_READ = 0x1, COPY_SRC = 0x4, COPY_DST = 0x8, UNIFORM = 0x40, STORAGE = 0x80, QUERY_RESOLVE = 0x200;
const MODE_READ = 0x1;
/** Packed sequences per submit (runPacked): each has its own uniform buffer in the pool. */
const PACKED_GROUP = 64;
/**
 * Block size the GPU runs the band modes at ('all', 'local', 'strided' do not depend on it):
 * 128 where 128-row query tiles apply (Q read from global memory: vec4 head dims) and the
 * sequences are longer than 64 rows, else 64 (docs/kernel-history.md, GPU v9: 64-row tiles
 * are slower at block 128; a regrouped 'strided' sequence can be a few rows long).
 */
const GPU_BAND_BLOCK = 128;
const GPU_BAND_BLOCK_SMALL = 64;
const META_CACHE = 4;
/**
 * Flash-decoding (shaders/bsattn_decode.wgsl) runs calls of at most DECODE_MAX_Q queries
 * against more keys, in the band modes, head dims divisible by 4 up to DECODE_MAX_DIM, without
 * keyLengths. Its keys are split so that the grid has about DECODE_GRID workgroups (an H100
 * has 132 SMs) with at least DECODE_MIN_KEYS keys each (a `local` 4096 step at 8 K/V heads: 256
 * workgroups, two an SM), at most DECODE_MAX_SPLITS splits.
 */
const DECODE_MAX_Q = 16;
const DECODE_MAX_DIM = 256;
const DECODE_GRID = 1024;
const DECODE_MIN_KEYS = 128;
const DECODE_MAX_SPLITS = 256;
/** An unbounded side of a band rule on positions (i32 in the shader, with room for positions). */
const POS_INF = 1 << 30;
/**
 * Device memory read rate of the cost model's memory-bound calls (flash-decoding), GB/s:
 * about 60% of an H100's 3.35 TB/s, and lavapipe's measured order of magnitude.
 */
const MEM_GBPS = { hardware: 2000, software: 5 };

/** How flash-decoding splits a call (decodeGeometry). */
export interface DecodeGeometry {
  lo: number;
  hi: number;
  step: number;
  /** Queries per workgroup chunk (1 for 'strided': each query has its own key group). */
  qc: number;
  qChunks: number;
  rowBlocks: number;
  /** Keys a chunk can see: the most any workgroup chunk visits, before splitting. */
  range: number;
  splits: number;
  splitKeys: number;
  workgroups: number;
}

/** Inference shapes: grouped K/V heads or queries against a different number of keys. */
function isInference(plan: Plan): boolean {
  return plan.nK !== plan.nCtx || plan.kvHeads !== plan.heads;
}

export interface GpuTensors {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
}

const fmtMs = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
const fmtFlops = (f: number) => (f >= 1e9 ? `${(f / 1e9).toFixed(2)} GFLOP` : `${(f / 1e6).toFixed(1)} MFLOP`);

export class WebGpuBackend implements Backend {
  readonly id = 'webgpu' as const;
  readonly capabilities: Capabilities = { sync: false, resident: false, gpuBuffers: true, modifiers: true, packed: true };
  /** Why the device is unusable (lost, destroyed, failed); null while it works. */
  deadReason: string | null = null;
  /** GPU time of the last call's kernels in ms, when timestamp queries are on. */
  lastGpuMs: number | null = null;
  private ctx: GpuContext | null = null;
  private initialising: Promise<void> | null = null;
  private programs: ProgramCache | null = null;
  private readonly pool = new Map<string, GPUBuffer>();
  private readonly metas = new Map<string, GPUBuffer>();
  /** Meta buffers evicted from `metas` during a call, destroyed at the next (see serial()). */
  private readonly retired: GPUBuffer[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly config: Config, private readonly options: WebGpuOptions = {}) {}

  init(): Promise<void> {
    this.initialising ??= (async () => {
      const user = this.config.device !== undefined && this.config.device !== null;
      const ctx = user ? await acquireDevice(this.config.device) : await acquireShared();
      if (this.disposed) {
        if (ctx.owned) releaseShared(ctx);
        return;
      }
      this.ctx = ctx;
      this.programs = ProgramCache.for(ctx.device, ctx.software);
      ctx.device.lost.then((info) => {
        this.deadReason ??= `the GPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''})`;
      });
    })();
    return this.initialising;
  }

  get unavailable(): string | null {
    return this.deadReason;
  }

  /**
   * Block size the band modes run at: 128 where 128-row query tiles apply (Q read from
   * global memory: vec4 head dims) and the sequences are longer than 64 rows, else 64.
   */
  bandBlockSize(_config: Config, seqLen: number, headDim: number): number {
    const tall = tallTilesApply(headDim) && seqLen > GPU_BAND_BLOCK_SMALL;
    return tall ? GPU_BAND_BLOCK : GPU_BAND_BLOCK_SMALL;
  }

  /**
   * Before an adapter is known: the best case of a real GPU (init() is worth trying only if
   * that beats the alternatives); then the adapter's own constants (software or hardware).
   */
  estimate(plan: Plan, copied = 4): Estimate {
    if (isInference(plan)) return this.estimateInference(plan, copied, false);
    const adapter = this.adapterName;
    if (!adapter) {
      const ms = estimateGpuMs(plan, false);
      return { ms, bestCase: true, text: `${fmtMs(ms)} ms for a GPU at best (upload, readback and compute of ${fmtFlops(plan.visitedFlops)})` };
    }
    const software = isSoftwareAdapter(adapter);
    const ms = estimateGpuMs(plan, software);
    return { ms, bestCase: false, text: `${fmtMs(ms)} ms estimated on ${software ? 'the software adapter' : 'the GPU'} (${adapter})` };
  }

  /**
   * Inference shapes: the bytes each tensor moves (q and out: nQ rows of heads; k and v: nK
   * rows of kvHeads; `cached`: K/V already on the device), and the kernel as the larger of its
   * compute time and the time to read the K/V it visits: a decode step is memory bound (one
   * query per K/V row), and flash-decoding reads each visited K/V row once per row block.
   */
  estimateInference(plan: Plan, copied: number, cached: boolean): Estimate {
    const adapter = this.adapterName;
    const software = adapter ? isSoftwareAdapter(adapter) : false;
    const r = getCalibration().webgpu[software ? 'software' : 'hardware'];
    const es = elementBytes(plan);
    const qBytes = plan.batch * plan.nCtx * plan.nEmbd * es;
    const kvBytes = cached ? 0 : plan.batch * plan.nK * plan.kvHeads * plan.headDim * es;
    const moved = ((2 * qBytes + 2 * kvBytes) * Math.min(4, copied)) / 4;
    let kernelMs = plan.visitedFlops / (r.gflops * 1e6);
    let what = `compute of ${fmtFlops(plan.visitedFlops)}`;
    if (this.decodeApplies(plan, cached)) {
      const geo = this.decodeGeometry(plan);
      const read = plan.batch * plan.kvHeads * geo.qChunks * geo.rowBlocks * Math.min(geo.range, plan.nK) * plan.headDim * es * 2;
      kernelMs = Math.max(plan.usefulFlops / (r.gflops * 1e6), read / (MEM_GBPS[software ? 'software' : 'hardware'] * 1e6));
      what = `flash-decoding reading ${(read / 1e6).toPrecision(3)} MB of K/V`;
    }
    const ms = r.fixedMs + moved / (r.gbps * 1e6) + kernelMs;
    const text = adapter
      ? `${fmtMs(ms)} ms estimated on ${software ? 'the software adapter' : 'the GPU'} (${adapter}; ${what}, ${(moved / 1e6).toFixed(2)} MB moved)`
      : `${fmtMs(ms)} ms for a GPU at best (${what}, ${(moved / 1e6).toFixed(2)} MB moved)`;
    return { ms, bestCase: !adapter, text };
  }

  /** GPU buffers this backend holds now (pooled tensors and layout metadata); for soak tests. */
  get bufferCount(): number {
    return this.pool.size + this.metas.size;
  }

  /** The adapter's name ('' until init), for the cost model. */
  get adapterName(): string {
    return this.ctx?.adapter ?? '';
  }

  get device(): GPUDevice | null {
    return this.ctx?.device ?? null;
  }

  canRun(plan: Plan): string | null {
    return this.canRunWith(plan, false);
  }

  /** Both storage types run: f32, and f16 (storage; see storageOf). */
  dtypeUnsupported(_dtype: Plan['dtype']): string | null {
    return null;
  }

  /**
   * The programs' storage form for a plan: f32, or for dtype 'float16' f16 storage arrays
   * where the device has shader-f16 (and the test hook noShaderF16 is off), else u32 words.
   */
  storageOf(plan: Pick<Plan, 'dtype'>): Storage {
    if (plan.dtype !== 'float16') return 'f32';
    return this.ctx?.shaderF16 && !programTesting.noShaderF16 ? 'f16' : 'f16x2';
  }

  /** What the f16 storage ran as, for lastRun.reason (null for f32). */
  private storageNote(plan: Plan): string | null {
    const s = this.storageOf(plan);
    return s === 'f32' ? null : s === 'f16' ? 'f16 storage in f16 arrays (shader-f16), f32 compute' : 'f16 storage in u32 words (unpack2x16float/pack2x16float: no shader-f16), f32 compute';
  }

  /** canRun for a call whose K/V are in a GPU KV cache (`cached`: nothing of K/V is uploaded). */
  canRunWith(plan: Plan, cached: boolean): string | null {
    const noDtype = this.dtypeUnsupported(plan.dtype);
    if (noDtype) return noDtype;
    if (this.deadReason) return this.deadReason;
    if (!this.ctx) return 'webgpu: not initialised';
    if (isInference(plan) || cached) {
      if (this.decodeApplies(plan, cached)) return null;
      const item = elementBytes(plan) * Math.max(plan.nCtx * plan.nEmbd, cached ? 0 : plan.nK * plan.kvHeads * plan.headDim);
      if (item > this.maxBinding()) return `webgpu: one batch item of this call (${item} bytes of q or k) exceeds the ${this.maxBinding()}-byte storage binding limit`;
    }
    if (!this.variantFor(plan)) {
      return `webgpu: head dim ${plan.headDim} with block size ${plan.blockSize} does not fit ` +
        `${this.ctx.device.limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`;
    }
    // The layouts go to the kernel in one storage binding: refused here, before they are built.
    const tables = tablesTooLarge([plan.batch, plan.nCtx, plan.nEmbd], plan.layouts, (l) => 4 * layoutWordCount(l), { where: 'one storage binding (the layout metadata)', setBy: 'the WebGPU device', limit: this.maxBinding() });
    if (tables) return `webgpu: ${tables.message}`;
    if (!isInference(plan) && !cached && !planChunks(plan, this.maxBinding(), elementBytes(plan))) return `webgpu: one head of one sequence exceeds the ${this.maxBinding()}-byte storage binding limit`;
    return null;
  }

  describe(): string {
    if (!this.ctx) return 'webgpu (not initialised)';
    return `webgpu ${this.ctx.subgroups && this.options.subgroups !== false ? 'subgroups' : 'plain'}, ${this.ctx.adapter}`;
  }

  /** Host arrays in and out (Float32Array, or Uint16Array of halves for dtype 'float16', moved as they are): upload, compute (chunked if needed), read back. */
  run(plan: Plan, inputs: RunInputs): Promise<TensorData> {
    return this.serial(() => (isInference(plan) ? this.runInference(plan, inputs, null) : this.runHost(plan, inputs)));
  }

  /**
   * Packed sequences (forward's seqLengths): each sequence is its own self-attention over its
   * rows (`segments`: its first token and its plan, batch 1), one dispatch each, and up to
   * PACKED_GROUP of them share one upload, one submit and one readback. In the buffers each
   * sequence starts at a 256-byte boundary (the storage binding offset alignment): the gaps
   * are never computed. A sequence larger than one binding runs on its own through run().
   */
  runPacked(plan: Plan, segments: readonly PackedSegment[], inputs: RunInputs): Promise<TensorData> {
    return this.serial(() => this.runPackedHost(plan, segments, inputs));
  }

  /** A call against a GPU KV cache whose new rows are already appended: uploads q only. */
  runCached(plan: Plan, inputs: RunInputs, cache: GpuKvCache): Promise<TensorData> {
    return this.serial(() => this.runInference(plan, inputs, cache));
  }

  /** forwardGPU against a GPU KV cache: appends kNew/vNew (GPU buffers) by copies, then runs on the cache. */
  runResidentCached(plan: Plan, q: GPUBuffer, kNew: GPUBuffer, vNew: GPUBuffer, cache: GpuKvCache, base: number, out?: GPUBuffer): Promise<GPUBuffer> {
    return this.serial(() => this.runDeviceCached(plan, q, kNew, vNew, cache, base, out));
  }

  /** A KV cache in this device's memory (src/backends/webgpu/kv-cache.ts). */
  createCache(geo: GpuCacheGeometry): GpuKvCache {
    const cache = new GpuKvCache(this.check(), geo, this.maxBinding());
    this.caches.add(cache);
    return cache;
  }

  /** KV caches in this backend's device memory: released with it. */
  private readonly caches = new Set<GpuKvCache>();

  /** What the last inference-shape call ran (kernel, splits), for lastRun; null after a self-attention call. */
  lastKernel: string | null = null;

  get note(): string | null {
    return [this.lastKernel, this.lastStorage].filter(Boolean).join('; ') || null;
  }

  /** The last call's f16 storage form in words (storageNote), null for f32. */
  private lastStorage: string | null = null;

  /** GPU-resident: q/k/v already on this device; writes `out` (or a new buffer) and returns it. */
  runResident(plan: Plan, tensors: GpuTensors, out?: GPUBuffer): Promise<GPUBuffer> {
    return this.serial(() => this.runDevice(plan, tensors, out));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.pool.values()) b.destroy();
    for (const b of this.metas.values()) b.destroy();
    for (const b of this.retired.splice(0)) b.destroy();
    for (const c of this.caches) c.dispose();
    this.caches.clear();
    this.pool.clear();
    this.metas.clear();
    if (this.ctx?.owned) releaseShared(this.ctx);
    this.ctx = null;
  }

  /** Whether a call runs the forward program's MODS pipeline: softcap, ALiBi, sinks, or the lse output (`lse`). */
  private modsOn(lse: boolean): boolean {
    return lse || hasScoreModifiers(this.config.mods);
  }

  /**
   * The uniform block of a dispatch with the scale of options.scale (log2 e folded in) and,
   * for the MODS pipeline, its 8 words appended (the shader's Params): the soft cap, the flags,
   * the chunk's first head, the heads of the call, query tokens per (batch item, head) in lse,
   * and (cross-attention, not regrouped) the position of query row 0 among the keys.
   */
  private withMods(base: ArrayBuffer, plan: Plan, h0: number, lseRows: number, qDist: number, lse: boolean, mods: boolean): ArrayBuffer {
    const m = this.config.mods;
    const out = new ArrayBuffer(base.byteLength + (mods ? 32 : 0));
    new Uint8Array(out).set(new Uint8Array(base));
    new Float32Array(out)[12] = Math.LOG2E * scaleOf(m, plan.headDim);
    if (!mods) return out;
    const at = base.byteLength / 4;
    const u = new Uint32Array(out);
    new Float32Array(out)[at] = m.softcap * Math.LOG2E;
    u.set([(m.alibi ? 1 : 0) | (m.sinks ? 2 : 0) | (lse ? 4 : 0), h0, plan.heads, lseRows, qDist], at + 1);
    return out;
  }

  /** Bindings 7 and 8 of the MODS pipeline: slopes and sinks (base 2), and the lse output (a placeholder without one). */
  private modsEntries(mods: boolean, lse: GPUBuffer | null, lseOffset = 0): GPUBindGroupEntry[] {
    if (!mods) return [];
    const m = this.config.mods;
    const heads = this.config.heads;
    const values = new Float32Array(Math.max(4, 2 * heads));
    for (let h = 0; h < heads; h++) {
      values[h] = (m.alibi?.[h] ?? 0) * Math.LOG2E;
      values[heads + h] = (m.sinks?.[h] ?? 0) * Math.LOG2E;
    }
    const buf = this.buffer('mods', values.byteLength, STORAGE | COPY_DST);
    this.check().queue.writeBuffer(buf, 0, values);
    return [{ binding: 7, resource: { buffer: buf } }, { binding: 8, resource: lse ? { buffer: lse, offset: lseOffset } : { buffer: this.buffer('lse-none', 16, STORAGE) } }];
  }

  /** One call at a time; meta buffers evicted by the previous call are destroyed before the next. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(() => {
      for (const b of this.retired.splice(0)) b.destroy();
      return fn();
    });
    this.tail = result.catch(() => undefined);
    return result;
  }

  private maxBinding(): number {
    const l = this.ctx!.device.limits;
    const lim = Math.min(l.maxStorageBufferBindingSize, l.maxBufferSize, this.options.maxBindingBytes ?? Infinity);
    return Math.floor(lim / 16) * 16;
  }

  /** The kernel variant for a plan (variants.ts): options.webgpu.variant where it applies, else the tile choice. */
  private variantFor(plan: Plan): Variant | null {
    const limit = this.ctx!.device.limits.maxComputeWorkgroupStorageSize;
    const sg = this.ctx!.subgroups && this.options.subgroups !== false;
    return chooseVariant(plan.blockSize, plan.headDim, limit, sg, this.options.variant);
  }

  private check(): GPUDevice {
    if (this.deadReason) throw new DeviceLostError(this.deadReason);
    if (!this.ctx) throw new DisposedError('the webgpu backend is not initialised or was disposed');
    return this.ctx.device;
  }

  private buffer(role: string, bytes: number, usage: number): GPUBuffer {
    const size = Math.max(16, Math.ceil(bytes / 256) * 256);
    const old = this.pool.get(role);
    if (old && old.size >= size) return old;
    old?.destroy();
    const b = this.check().createBuffer({ label: `sparse-attention ${role}`, size, usage });
    this.pool.set(role, b);
    return b;
  }

  private metaBuffer(plan: Plan, chunk: Chunk) {
    const id = layoutId(plan.layouts);
    const lens = plan.keyLengths ? Array.from(plan.keyLengths.subarray(chunk.b0, chunk.b1)).join(',') : '-';
    const key = `${id}|${chunk.b0}-${chunk.b1}|${chunk.h0}-${chunk.h1}|${lens}`;
    let buf = this.metas.get(key);
    const meta = buildMeta(plan, chunk);
    if (!buf) {
      if (this.metas.size >= META_CACHE) {
        // destroyed when this call's work is done: a command buffer being encoded may bind it
        // (a packed call's dispatches each have their own sequence length, hence meta)
        const [k0, b0] = this.metas.entries().next().value!;
        this.retired.push(b0);
        this.metas.delete(k0);
      }
      buf = this.check().createBuffer({ label: 'sparse-attention meta', size: Math.ceil(meta.words.byteLength / 16) * 16, usage: STORAGE | COPY_DST });
      this.check().queue.writeBuffer(buf, 0, meta.words as Uint32Array<ArrayBuffer>);
      this.metas.set(key, buf);
    }
    return { buf, meta };
  }

  /** Encodes one chunk's dispatch into `pass`; its uniform buffer is per chunk index. */
  private async encode(enc: GPUCommandEncoder, plan: Plan, chunk: Chunk, i: number, t: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; o: GPUBuffer }, offsets: number[], bytes: number, query: GPUQuerySet | null, lse: GPUBuffer | null = null, lseOffset = 0): Promise<void> {
    const device = this.check();
    const variant = this.variantFor(plan)!;
    const mods = this.modsOn(lse !== null);
    const storage = this.storageOf(plan);
    const pipeline = await this.programs!.get({ variant, bs: plan.blockSize, headDim: plan.headDim, mods, storage });
    const scanV = this.options.scanV ?? true;
    const scan = scanV ? await this.programs!.scan(storage !== 'f32') : null;
    this.lastStorage = this.storageNote(plan);
    const { buf: metaBuf, meta } = this.metaBuffer(plan, chunk);
    const d = buildDispatch(plan, chunk, variant.bm, meta, device.limits.maxComputeWorkgroupsPerDimension);
    const params = this.withMods(d.params, plan, chunk.h0, plan.nCtx, 0, lse !== null, mods);
    const uniform = this.buffer(`params${i}`, params.byteLength, UNIFORM | COPY_DST);
    device.queue.writeBuffer(uniform, 0, params);
    const bind = (binding: number, buffer: GPUBuffer, offset = 0, size?: number) => ({ binding, resource: { buffer, offset, size } });
    // vflag: 0 when V is all finite (the pre-pass ORs in 1 otherwise); without the pre-pass
    // it is 1, and partial tiles always take the masked P·V
    const vflag = this.buffer(`vflag${i}`, 16, STORAGE | COPY_DST);
    if (scan) enc.clearBuffer(vflag, 0, 16);
    else device.queue.writeBuffer(vflag, 0, new Uint32Array([1, 0, 0, 0]));
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [bind(0, uniform), bind(1, metaBuf), bind(2, t.q, offsets[0], bytes), bind(3, t.k, offsets[1], bytes), bind(4, t.v, offsets[2], bytes), bind(5, t.o, offsets[3], bytes), bind(6, vflag, 0, 16), ...this.modsEntries(mods, lse, lseOffset)],
    });
    const pass = enc.beginComputePass(query ? { timestampWrites: { querySet: query, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } } : {});
    if (scan) {
      pass.setPipeline(scan);
      pass.setBindGroup(0, device.createBindGroup({ layout: scan.getBindGroupLayout(0), entries: [bind(0, t.v, offsets[2], bytes), bind(1, vflag, 0, 16)] }));
      pass.dispatchWorkgroups(Math.min(2048, Math.max(1, Math.ceil(bytes / 4 / 256 / 16))));
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    for (let r = 0; r < (query ? this.repeat : 1); r++) pass.dispatchWorkgroups(d.gridX, d.gridY);
    pass.end();
  }

  /** options.webgpu.repeat (benchmarks): timed forwardGPU passes dispatch their kernels this many times. */
  private get repeat(): number {
    return this.options.repeat ?? 1;
  }

  private async runHost(plan: Plan, inputs: RunInputs): Promise<TensorData> {
    const device = this.check();
    this.lastKernel = null;
    const es = elementBytes(plan);
    const chunks = planChunks(plan, this.maxBinding(), es)!;
    const out = inputs.out ?? newLike(inputs.q, plan.batch * plan.nCtx * plan.nEmbd);
    const d = plan.headDim;
    const n0 = plan.batch * plan.nCtx * plan.nEmbd;
    for (let ci = 0; ci < chunks.length; ci++) {
      const c = chunks[ci];
      if (inputs.signal?.aborted) throw abortError(inputs.signal);
      // The caller's arrays may have been detached or swapped since the call was made (or
      // between chunks): a usage error, raised before anything is uploaded.
      checkStillWhole({ 'q.data': inputs.q, 'k.data': inputs.k, 'v.data': inputs.v, out }, n0);
      const whole = c.h0 === 0 && c.h1 === plan.heads;
      const n = (c.b1 - c.b0) * plan.nCtx * (c.h1 - c.h0) * d;
      // (halves: an odd count is padded to whole words, which copies and bindings need)
      const bytes = pad4(n * es);
      const slice = (x: TensorData) => uploadable(whole ? x.subarray(c.b0 * plan.nCtx * plan.nEmbd, c.b0 * plan.nCtx * plan.nEmbd + n) : gatherHeads(x, plan, c));
      const t = {
        q: this.buffer('q', bytes, STORAGE | COPY_DST),
        k: this.buffer('k', bytes, STORAGE | COPY_DST),
        v: this.buffer('v', bytes, STORAGE | COPY_DST),
        o: this.buffer('o', bytes, STORAGE | COPY_SRC),
      };
      const staging = this.buffer('staging', bytes, MAP_READ | COPY_DST);
      // lse of the chunk: [items][heads h0..h1][nCtx], contiguous in the call's [batch][heads][nCtx]
      const lseN = (c.b1 - c.b0) * (c.h1 - c.h0) * plan.nCtx;
      const lse = inputs.lse ? this.lseBuffers(lseN) : null;
      await this.scoped(async () => {
        device.queue.writeBuffer(t.q, 0, slice(inputs.q));
        device.queue.writeBuffer(t.k, 0, slice(inputs.k));
        device.queue.writeBuffer(t.v, 0, slice(inputs.v));
        const enc = device.createCommandEncoder();
        await this.encode(enc, plan, c, 0, t, [0, 0, 0, 0], bytes, null, lse?.out ?? null);
        enc.copyBufferToBuffer(t.o, 0, staging, 0, bytes);
        if (lse) enc.copyBufferToBuffer(lse.out, 0, lse.staging, 0, lseN * 4);
        device.queue.submit([enc.finish()]);
      });
      if (lse) await this.readLse(lse.staging, lseN, inputs.lse!, (c.b0 * plan.heads + c.h0) * plan.nCtx);
      await staging.mapAsync(MODE_READ, 0, bytes);
      if (this.deadReason) throw new DeviceLostError(this.deadReason);
      const result = viewLike(out, staging.getMappedRange(0, bytes), n);
      try {
        checkStillWhole({ out }, n0);
        if (whole) out.set(result, c.b0 * plan.nCtx * plan.nEmbd);
        else scatterHeads(result, out, plan, c);
      } finally {
        staging.unmap();
      }
      inputs.progress?.((ci + 1) / chunks.length);
    }
    return out;
  }

  private async runDevice(plan: Plan, tensors: GpuTensors, out?: GPUBuffer): Promise<GPUBuffer> {
    const device = this.check();
    this.lastKernel = null;
    if (isInference(plan)) return this.runDeviceInference(plan, tensors, out);
    const item = plan.nCtx * plan.nEmbd * elementBytes(plan);
    const total = plan.batch * item;
    if (item % 4 !== 0) throw new UnsupportedError(`forwardGPU with dtype 'float16' needs whole 4-byte words per batch item (nCtx·nEmbd even; got ${plan.nCtx}·${plan.nEmbd}); use forward()`);
    for (const [name, b] of Object.entries(tensors)) {
      if (!b || typeof (b as GPUBuffer).size !== 'number' || (b as GPUBuffer).size < total) {
        throw new ArgumentError(`forwardGPU ${name} must be a GPUBuffer of at least ${total} bytes (got ${b ? `${(b as GPUBuffer).size} bytes` : String(b)})`);
      }
    }
    const o = out ?? device.createBuffer({ label: 'sparse-attention output', size: Math.ceil(total / 16) * 16, usage: STORAGE | COPY_SRC | COPY_DST });
    if (o.size < total) throw new ArgumentError(`forwardGPU out must hold ${total} bytes (got ${o.size})`);
    // Resident tensors can only be split by whole batch items, at aligned binding offsets.
    const max = this.maxBinding();
    const per = Math.floor(max / item);
    const align = device.limits.minStorageBufferOffsetAlignment;
    if (per < 1 || (per < plan.batch && (per * item) % align !== 0)) {
      throw new UnsupportedError(`forwardGPU cannot split a batch item of ${item} bytes into storage bindings of at most ${max} bytes; use forward()`);
    }
    const chunks: Chunk[] = [];
    for (let b0 = 0; b0 < plan.batch; b0 += per) chunks.push({ b0, b1: Math.min(plan.batch, b0 + per), h0: 0, h1: plan.heads });
    const query = this.ctx!.timestamps && this.options.timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 * chunks.length }) : null;
    let resolve = null as GPUBuffer | null;
    await this.scoped(async () => {
      const enc = device.createCommandEncoder();
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i];
        const off = c.b0 * item;
        await this.encode(enc, plan, c, i, { ...tensors, o }, [off, off, off, off], (c.b1 - c.b0) * item, query);
        this.lastStorage = this.storageNote(plan);
      }
      if (query) {
        const bytes = 16 * chunks.length;
        const qbuf = this.buffer('timestamps', bytes, QUERY_RESOLVE | COPY_SRC);
        resolve = this.buffer('timestamps-read', bytes, MAP_READ | COPY_DST);
        enc.resolveQuerySet(query, 0, 2 * chunks.length, qbuf, 0);
        enc.copyBufferToBuffer(qbuf, 0, resolve, 0, bytes);
      }
      device.queue.submit([enc.finish()]);
    });
    if (query && resolve) {
      await resolve.mapAsync(MODE_READ, 0, 16 * chunks.length);
      const ts = new BigUint64Array(resolve.getMappedRange(0, 16 * chunks.length).slice(0));
      resolve.unmap();
      query.destroy();
      let ns = 0n;
      for (let i = 0; i < chunks.length; i++) ns += ts[2 * i + 1] - ts[2 * i];
      this.lastGpuMs = Number(ns) / 1e6 / this.repeat;
    }
    if (this.deadReason) throw new DeviceLostError(this.deadReason);
    return o;
  }

  /**
   * Whether flash-decoding runs this plan: few queries against more keys in a band mode,
   * vec4 head dims up to DECODE_MAX_DIM, no keyLengths, and (uploaded K/V) the whole K and V
   * in one binding each. options.webgpu.decodeSplits = 0 turns it off.
   */
  decodeApplies(plan: Plan, cached: boolean): boolean {
    if (this.options.decodeSplits === 0) return false;
    if (plan.mode !== 'all' && plan.mode !== 'local' && plan.mode !== 'strided') return false;
    if (plan.nCtx > DECODE_MAX_Q || plan.nK <= plan.nCtx || plan.keyLengths) return false;
    if (plan.headDim % 4 !== 0 || plan.headDim > DECODE_MAX_DIM) return false;
    // (not initialised: the best case, for the estimate)
    return cached || !this.ctx || plan.batch * plan.nK * plan.kvHeads * plan.headDim * elementBytes(plan) <= this.maxBinding();
  }

  /** The split of a decode call: the band rule on positions, query chunks, row blocks, key splits. */
  decodeGeometry(plan: Plan): DecodeGeometry {
    const L = this.config.localAttnCtx;
    const causal = plan.causal;
    let lo = -POS_INF;
    let hi = causal ? 0 : POS_INF;
    if (plan.mode === 'local') {
      lo = -(L - 1);
      hi = causal ? 0 : L - 1;
    }
    const step = plan.mode === 'strided' ? L : 1;
    const qc = step > 1 ? 1 : plan.nCtx;
    const qChunks = plan.nCtx / qc;
    const group = plan.heads / plan.kvHeads;
    const rowBlocks = Math.ceil((group * qc) / decodeRows(paddedHeadDim(plan.headDim)));
    const off = plan.nK - plan.nCtx;
    const range = step > 1 ? Math.ceil(plan.nK / step) : Math.max(0, Math.min(plan.nK - 1, off + plan.nCtx - 1 + hi) - Math.max(0, off + lo) + 1);
    const base = plan.batch * plan.kvHeads * qChunks * rowBlocks;
    const want = this.options.decodeSplits ?? Math.min(DECODE_MAX_SPLITS, Math.ceil(range / DECODE_MIN_KEYS), Math.ceil(DECODE_GRID / base));
    const splitKeys = Math.max(1, Math.ceil(range / Math.max(1, want)));
    const splits = Math.max(1, Math.ceil(range / splitKeys));
    return { lo, hi, step, qc, qChunks, rowBlocks, range, splits, splitKeys, workgroups: base * splits };
  }

  /**
   * Host tensors in, an inference shape (GQA, nQ != nK, a KV cache): q uploaded per chunk of
   * whole batch items, K/V uploaded too unless a cache holds them; flash-decoding for decode
   * shapes, else the forward program with XATTN.
   */
  private async runInference(plan: Plan, inputs: RunInputs, cache: GpuKvCache | null): Promise<TensorData> {
    const device = this.check();
    const e = plan.nEmbd;
    const kvE = plan.kvHeads * plan.headDim;
    const es = elementBytes(plan);
    const qItem = plan.nCtx * e * es;
    const kvItem = plan.nK * kvE * es;
    const decode = this.decodeApplies(plan, cache !== null);
    const per = decode ? plan.batch : Math.max(1, Math.floor(this.maxBinding() / Math.max(qItem, cache ? 0 : kvItem)));
    const out = inputs.out ?? newLike(inputs.q, plan.batch * plan.nCtx * e);
    const nq = plan.batch * plan.nCtx * e;
    const nkv = plan.batch * plan.nK * kvE;
    const chunks = Math.ceil(plan.batch / per);
    for (let ci = 0; ci < chunks; ci++) {
      const b0 = ci * per;
      const b1 = Math.min(plan.batch, b0 + per);
      const nb = b1 - b0;
      if (inputs.signal?.aborted) throw abortError(inputs.signal);
      if (cache) checkStillWhole({ 'q.data': inputs.q, out }, nq);
      else {
        checkStillWhole({ 'q.data': inputs.q, out }, nq);
        checkStillWhole({ 'k.data': inputs.k, 'v.data': inputs.v }, nkv);
      }
      // (halves: odd counts padded to whole words, which copies and bindings need)
      const qBytes = pad4(nb * qItem);
      const q = this.buffer('q', qBytes, STORAGE | COPY_DST);
      const o = this.buffer('o', qBytes, STORAGE | COPY_SRC);
      const staging = this.buffer('staging', qBytes, MAP_READ | COPY_DST);
      const lseN = nb * plan.heads * plan.nCtx;
      const lse = inputs.lse ? this.lseBuffers(lseN) : null;
      let kv: { k: GPUBuffer; v: GPUBuffer; bytes: number | undefined; at: KvAddressing };
      if (cache) {
        const r = cache.regions();
        kv = { k: r.k, v: r.v, bytes: undefined, at: { bItem: r.bItem, gItem: r.gItem, rowStride: r.rowStride, b0 } };
      } else {
        const bytes = pad4(nb * kvItem);
        kv = { k: this.buffer('k', bytes, STORAGE | COPY_DST), v: this.buffer('v', bytes, STORAGE | COPY_DST), bytes, at: uploadedKv(plan) };
      }
      await this.scoped(async () => {
        device.queue.writeBuffer(q, 0, uploadable(inputs.q.subarray(b0 * plan.nCtx * e, b1 * plan.nCtx * e)));
        if (!cache) {
          device.queue.writeBuffer(kv.k, 0, uploadable(inputs.k.subarray(b0 * plan.nK * kvE, b1 * plan.nK * kvE)));
          device.queue.writeBuffer(kv.v, 0, uploadable(inputs.v.subarray(b0 * plan.nK * kvE, b1 * plan.nK * kvE)));
        }
        const enc = device.createCommandEncoder();
        const chunk = { b0, b1, h0: 0, h1: plan.heads };
        if (decode) await this.encodeDecode(enc, plan, { q, o, k: kv.k, v: kv.v }, kv.at, null, lse?.out ?? null);
        else await this.encodeInference(enc, plan, chunk, { q, o, k: kv.k, v: kv.v }, qBytes, kv.bytes, kv.at, null, lse?.out ?? null);
        enc.copyBufferToBuffer(o, 0, staging, 0, qBytes);
        if (lse) enc.copyBufferToBuffer(lse.out, 0, lse.staging, 0, lseN * 4);
        device.queue.submit([enc.finish()]);
      });
      if (lse) await this.readLse(lse.staging, lseN, inputs.lse!, b0 * plan.heads * plan.nCtx);
      await staging.mapAsync(MODE_READ, 0, qBytes);
      if (this.deadReason) throw new DeviceLostError(this.deadReason);
      try {
        checkStillWhole({ out }, nq);
        setFrom(out, viewLike(out, staging.getMappedRange(0, qBytes), nb * plan.nCtx * e), b0 * plan.nCtx * e);
      } finally {
        staging.unmap();
      }
      inputs.progress?.((ci + 1) / chunks);
    }
    return out;
  }

  /** The forward program with XATTN for one chunk of whole batch items (q/o from offset 0; K/V per `at`). */
  private async encodeInference(enc: GPUCommandEncoder, plan: Plan, chunk: Chunk, t: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; o: GPUBuffer }, qBytes: number, kvBytes: number | undefined, at: KvAddressing, query: GPUQuerySet | null, lse: GPUBuffer | null = null, at2: { i: number; q: number; kv: number; lse: number } = { i: 0, q: 0, kv: 0, lse: 0 }): Promise<void> {
    const device = this.check();
    const variant = this.variantFor(plan)!;
    const mods = this.modsOn(lse !== null);
    const storage = this.storageOf(plan);
    const pipeline = await this.programs!.get({ variant, bs: plan.blockSize, headDim: plan.headDim, xattn: true, mods, storage });
    const scan = (this.options.scanV ?? true) ? await this.programs!.scan(storage !== 'f32') : null;
    this.lastStorage = this.storageNote(plan);
    const { buf: metaBuf, meta } = this.metaBuffer(plan, chunk);
    const d = buildDispatchX(plan, chunk, variant.bm, meta, device.limits.maxComputeWorkgroupsPerDimension, at);
    // q_dist: the shader reads it where the step is 1 (a 'strided' L of 1 regroups into one group too)
    const params = this.withMods(d.params, plan, chunk.h0, plan.nCtx, plan.regroup > 1 ? 0 : plan.nK - plan.nCtx, lse !== null, mods);
    // at2 (runPacked): this dispatch's index among those of one submit (its own uniforms) and its byte offsets
    const uniform = this.buffer(`params-x${at2.i || ''}`, params.byteLength, UNIFORM | COPY_DST);
    device.queue.writeBuffer(uniform, 0, params);
    const bind = (binding: number, buffer: GPUBuffer, size?: number, offset = 0) => ({ binding, resource: { buffer, offset, size } });
    const vflag = this.buffer(`vflag-x${at2.i || ''}`, 16, STORAGE | COPY_DST);
    if (scan) enc.clearBuffer(vflag, 0, 16);
    else device.queue.writeBuffer(vflag, 0, new Uint32Array([1, 0, 0, 0]));
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [bind(0, uniform), bind(1, metaBuf), bind(2, t.q, qBytes, at2.q), bind(3, t.k, kvBytes, at2.kv), bind(4, t.v, kvBytes, at2.kv), bind(5, t.o, qBytes, at2.q), bind(6, vflag, 16), ...this.modsEntries(mods, lse, at2.lse)],
    });
    const pass = enc.beginComputePass(query ? { timestampWrites: { querySet: query, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    if (scan) {
      const vBytes = kvBytes ?? t.v.size;
      pass.setPipeline(scan);
      pass.setBindGroup(0, device.createBindGroup({ layout: scan.getBindGroupLayout(0), entries: [bind(0, t.v, kvBytes, at2.kv), bind(1, vflag, 16)] }));
      pass.dispatchWorkgroups(Math.min(2048, Math.max(1, Math.ceil(vBytes / 4 / 256 / 16))));
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    for (let r = 0; r < (query ? this.repeat : 1); r++) pass.dispatchWorkgroups(d.gridX, d.gridY);
    pass.end();
    this.lastKernel = `forward kernel ${variant.name} with grouped/cross-attention addressing`;
  }

  /** Flash-decoding: the split kernel and (more than one split) the combine pass, in one compute pass. */
  private async encodeDecode(enc: GPUCommandEncoder, plan: Plan, t: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; o: GPUBuffer }, at: KvAddressing, query: GPUQuerySet | null, lse: GPUBuffer | null = null): Promise<void> {
    const device = this.check();
    const dp = paddedHeadDim(plan.headDim);
    // the lanes of a key must share a subgroup (lavapipe's are 8 wide: 16-lane keys sum through workgroup memory there)
    const sg = this.ctx!.subgroups && this.options.subgroups !== false && this.ctx!.subgroupMin >= decodeLanes(dp);
    const mods = this.modsOn(lse !== null);
    const storage = this.storageOf(plan);
    const pipeline = await this.programs!.decode(dp, sg, mods, storage);
    this.lastStorage = this.storageNote(plan);
    const geo = this.decodeGeometry(plan);
    const maxDim = device.limits.maxComputeWorkgroupsPerDimension;
    const gridX = Math.min(geo.workgroups, maxDim);
    const params = new ArrayBuffer(mods ? 128 : 96);
    const u = new Uint32Array(params);
    const i = new Int32Array(params);
    const f = new Float32Array(params);
    u.set([plan.heads, plan.kvHeads, plan.nCtx, plan.headDim, plan.nEmbd, 0, geo.step, plan.nK, at.bItem, plan.headDim, at.gItem, at.rowStride, 0, 0, geo.splits, geo.splitKeys, 0, geo.rowBlocks, geo.qc, geo.qChunks]);
    i[5] = plan.nK - plan.nCtx;
    i[12] = geo.lo;
    i[13] = geo.hi;
    f[20] = Math.LOG2E * scaleOf(this.config.mods, plan.headDim);
    f[21] = -Infinity;
    u[22] = gridX;
    u[23] = geo.workgroups;
    const m = this.config.mods;
    const flags = (m.alibi ? 1 : 0) | (m.sinks ? 2 : 0) | (lse ? 4 : 0);
    if (mods) {
      f[24] = m.softcap * Math.LOG2E;
      u[25] = flags;
    }
    const modsEntries = this.modsEntries(mods, lse);
    const uniform = this.buffer('params-decode', params.byteLength, UNIFORM | COPY_DST);
    device.queue.writeBuffer(uniform, 0, params);
    const rows = plan.batch * plan.nCtx * plan.heads;
    const partBytes = geo.splits > 1 ? rows * geo.splits * (dp / 4 + 1) * 16 : 16;
    const part = this.buffer('decode-partials', partBytes, STORAGE);
    const bind = (binding: number, buffer: GPUBuffer) => ({ binding, resource: { buffer } });
    // (MODS) slopes/sinks and lse at bindings 6 and 7 here, 3 and 4 in the combine pass
    const at6 = modsEntries.map((e, n) => ({ ...e, binding: 6 + n }));
    const group0 = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [bind(0, uniform), bind(1, t.q), bind(2, t.k), bind(3, t.v), bind(4, t.o), bind(5, part), ...at6] });
    const combine = geo.splits > 1 ? await this.programs!.combine(mods, storage !== 'f32') : null;
    const cx = Math.min(rows, maxDim);
    let group1: GPUBindGroup | null = null;
    if (combine) {
      const p2 = new ArrayBuffer(mods ? 48 : 32);
      new Uint32Array(p2).set([rows, geo.splits, dp / 4, plan.headDim / 4, cx]);
      new Float32Array(p2)[5] = -Infinity;
      if (mods) new Uint32Array(p2).set([plan.heads, plan.nCtx, flags], 8);
      const u2 = this.buffer('params-combine', p2.byteLength, UNIFORM | COPY_DST);
      device.queue.writeBuffer(u2, 0, p2);
      const at3 = modsEntries.map((e, n) => ({ ...e, binding: 3 + n }));
      group1 = device.createBindGroup({ layout: combine.getBindGroupLayout(0), entries: [bind(0, u2), bind(1, part), bind(2, t.o), ...at3] });
    }
    const pass = enc.beginComputePass(query ? { timestampWrites: { querySet: query, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    for (let r = 0; r < (query ? this.repeat : 1); r++) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group0);
      pass.dispatchWorkgroups(gridX, Math.ceil(geo.workgroups / gridX));
      if (!combine || !group1) continue;
      pass.setPipeline(combine);
      pass.setBindGroup(0, group1);
      pass.dispatchWorkgroups(cx, Math.ceil(rows / cx));
    }
    pass.end();
    const group = plan.heads / plan.kvHeads;
    this.lastKernel = `flash-decoding: ${geo.splits} split${geo.splits > 1 ? 's' : ''} of ≤ ${geo.splitKeys} keys × ${plan.batch * plan.kvHeads * geo.qChunks * geo.rowBlocks} workgroups, each K/V tile read once for ${Math.min(group * geo.qc, decodeRows(dp))} query rows${geo.splits > 1 ? ', then the combine pass' : ''}`;
  }

  /** forwardGPU of an inference shape (kvHeads < heads, nK != nCtx): K/V buffers of nK rows of kvHeads heads, one binding each. */
  private async runDeviceInference(plan: Plan, tensors: GpuTensors, out?: GPUBuffer): Promise<GPUBuffer> {
    const device = this.check();
    const es = elementBytes(plan);
    const qBytes = pad4(plan.batch * plan.nCtx * plan.nEmbd * es);
    const kvBytes = pad4(plan.batch * plan.nK * plan.kvHeads * plan.headDim * es);
    this.lastGpuMs = null;
    for (const [name, b, need] of [['q', tensors.q, qBytes], ['k', tensors.k, kvBytes], ['v', tensors.v, kvBytes]] as const) {
      if (!b || typeof (b as GPUBuffer).size !== 'number' || (b as GPUBuffer).size < need) {
        throw new ArgumentError(`forwardGPU ${name} must be a GPUBuffer of at least ${need} bytes (got ${b ? `${(b as GPUBuffer).size} bytes` : String(b)})`);
      }
    }
    if (Math.max(qBytes, kvBytes) > this.maxBinding()) throw new UnsupportedError(`forwardGPU with grouped K/V heads or nK != nCtx needs q, k and v in one storage binding each (at most ${this.maxBinding()} bytes); use forward()`);
    const o = out ?? device.createBuffer({ label: 'sparse-attention output', size: Math.ceil(qBytes / 16) * 16, usage: STORAGE | COPY_SRC | COPY_DST });
    if (o.size < qBytes) throw new ArgumentError(`forwardGPU out must hold ${qBytes} bytes (got ${o.size})`);
    const query = this.ctx!.timestamps && this.options.timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
    await this.scoped(async () => {
      const enc = device.createCommandEncoder();
      const t = { ...tensors, o };
      if (this.decodeApplies(plan, false)) await this.encodeDecode(enc, plan, t, uploadedKv(plan), query);
      else await this.encodeInference(enc, plan, { b0: 0, b1: plan.batch, h0: 0, h1: plan.heads }, t, qBytes, kvBytes, uploadedKv(plan), query);
      device.queue.submit([enc.finish()]);
    });
    await this.readTimestamps(query);
    if (this.deadReason) throw new DeviceLostError(this.deadReason);
    return o;
  }

  /** Resolves a 2-stamp query set of one timed pass into lastGpuMs (per repeat), then destroys it. */
  private async readTimestamps(query: GPUQuerySet | null): Promise<void> {
    if (!query) return;
    const device = this.check();
    const qbuf = this.buffer('timestamps', 16, QUERY_RESOLVE | COPY_SRC);
    const read = this.buffer('timestamps-read', 16, MAP_READ | COPY_DST);
    const enc = device.createCommandEncoder();
    enc.resolveQuerySet(query, 0, 2, qbuf, 0);
    enc.copyBufferToBuffer(qbuf, 0, read, 0, 16);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(MODE_READ, 0, 16);
    const ts = new BigUint64Array(read.getMappedRange(0, 16).slice(0));
    read.unmap();
    query.destroy();
    this.lastGpuMs = Number(ts[1] - ts[0]) / 1e6 / this.repeat;
  }

  private async runDeviceCached(plan: Plan, q: GPUBuffer, kNew: GPUBuffer, vNew: GPUBuffer, cache: GpuKvCache, base: number, out?: GPUBuffer): Promise<GPUBuffer> {
    const device = this.check();
    const nNew = plan.nCtx;
    const es = elementBytes(plan);
    const qBytes = pad4(plan.batch * plan.nCtx * plan.nEmbd * es);
    const kvBytes = plan.batch * nNew * plan.kvHeads * plan.headDim * es;
    for (const [name, b, need] of [['q', q, qBytes], ['k', kNew, kvBytes], ['v', vNew, kvBytes]] as const) {
      if (!b || typeof (b as GPUBuffer).size !== 'number' || (b as GPUBuffer).size < need) {
        throw new ArgumentError(`forwardGPU ${name} must be a GPUBuffer of at least ${need} bytes (got ${b ? `${(b as GPUBuffer).size} bytes` : String(b)})`);
      }
    }
    if (qBytes > this.maxBinding()) throw new UnsupportedError(`forwardGPU with a cache needs q in one storage binding (${qBytes} > ${this.maxBinding()} bytes); use forward()`);
    const o = out ?? device.createBuffer({ label: 'sparse-attention output', size: Math.ceil(qBytes / 16) * 16, usage: STORAGE | COPY_SRC | COPY_DST });
    if (o.size < qBytes) throw new ArgumentError(`forwardGPU out must hold ${qBytes} bytes (got ${o.size})`);
    const query = this.ctx!.timestamps && this.options.timestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
    let resolve = null as GPUBuffer | null;
    const r = cache.regions();
    const at = { bItem: r.bItem, gItem: r.gItem, rowStride: r.rowStride, b0: 0 };
    await this.scoped(async () => {
      const enc = device.createCommandEncoder();
      cache.appendFrom(enc, kNew, vNew, base, nNew);
      const t = { q, o, k: r.k, v: r.v };
      if (this.decodeApplies(plan, true)) await this.encodeDecode(enc, plan, t, at, query);
      else await this.encodeInference(enc, plan, { b0: 0, b1: plan.batch, h0: 0, h1: plan.heads }, t, qBytes, undefined, at, query);
      if (query) {
        const qbuf = this.buffer('timestamps', 16, QUERY_RESOLVE | COPY_SRC);
        resolve = this.buffer('timestamps-read', 16, MAP_READ | COPY_DST);
        enc.resolveQuerySet(query, 0, 2, qbuf, 0);
        enc.copyBufferToBuffer(qbuf, 0, resolve, 0, 16);
      }
      device.queue.submit([enc.finish()]);
    });
    if (query && resolve) {
      await resolve.mapAsync(MODE_READ, 0, 16);
      const ts = new BigUint64Array(resolve.getMappedRange(0, 16).slice(0));
      resolve.unmap();
      query.destroy();
      this.lastGpuMs = Number(ts[1] - ts[0]) / 1e6 / this.repeat;
    }
    if (this.deadReason) throw new DeviceLostError(this.deadReason);
    return o;
  }

  private async runPackedHost(plan: Plan, segments: readonly PackedSegment[], inputs: RunInputs): Promise<TensorData> {
    const device = this.check();
    this.lastKernel = null;
    const e = plan.nEmbd;
    const kvE = plan.kvHeads * plan.headDim;
    const n = plan.nCtx;
    const H = plan.heads;
    const es = elementBytes(plan);
    const out = inputs.out ?? newLike(inputs.q, n * e);
    const limit = this.maxBinding();
    const align = (x: number) => Math.ceil(x / 256) * 256;
    const total = segments.reduce((a, s) => a + s.plan.nCtx, 0);
    let done = 0;
    // rows of no sequence (zero lengths are left out of `segments`) and of sequences with no key: zeros
    for (let i = 0; i < segments.length;) {
      if (inputs.signal?.aborted) throw abortError(inputs.signal);
      checkStillWhole({ 'q.data': inputs.q, out }, n * e);
      checkStillWhole({ 'k.data': inputs.k, 'v.data': inputs.v }, n * kvE);
      const first = segments[i];
      const len0 = first.plan.nCtx;
      if (len0 * e * es > limit || len0 * kvE * es > limit) {
        // one sequence past a binding: the unpacked path, which splits it by heads
        const rows = (x: TensorData, w: number) => x.subarray(first.start * w, (first.start + len0) * w);
        const lse = inputs.lse ? new Float32Array(H * len0) : undefined;
        const sub = { q: rows(inputs.q, e), k: rows(inputs.k, kvE), v: rows(inputs.v, kvE), out: rows(out, e), signal: inputs.signal, lse };
        await (isInference(first.plan) ? this.runInference(first.plan, sub, null) : this.runHost(first.plan, sub));
        if (lse) for (let h = 0; h < H; h++) inputs.lse!.set(lse.subarray(h * len0, (h + 1) * len0), h * n + first.start);
        done += len0;
        i++;
        continue;
      }
      const group: { s: PackedSegment; q: number; kv: number; lse: number }[] = [];
      let qEnd = 0, kvEnd = 0, lseEnd = 0;
      while (i < segments.length && group.length < PACKED_GROUP) {
        const s = segments[i];
        const len = s.plan.nCtx;
        const at = { q: align(qEnd), kv: align(kvEnd), lse: align(lseEnd) };
        if (len * e * es > limit || len * kvE * es > limit || at.q + pad4(len * e * es) > limit || at.kv + pad4(len * kvE * es) > limit) break;
        group.push({ s, ...at });
        // (halves: an odd count is padded to a whole word, into the gap before the next sequence)
        qEnd = at.q + pad4(len * e * es);
        kvEnd = at.kv + pad4(len * kvE * es);
        lseEnd = at.lse + H * len * 4;
        i++;
      }
      const t = {
        q: this.buffer('q', qEnd, STORAGE | COPY_DST),
        k: this.buffer('k', kvEnd, STORAGE | COPY_DST),
        v: this.buffer('v', kvEnd, STORAGE | COPY_DST),
        o: this.buffer('o', qEnd, STORAGE | COPY_SRC),
      };
      const staging = this.buffer('staging', qEnd, MAP_READ | COPY_DST);
      const lse = inputs.lse ? this.lseBuffers(lseEnd / 4) : null;
      await this.scoped(async () => {
        const enc = device.createCommandEncoder();
        for (let j = 0; j < group.length; j++) {
          const { s, q, kv } = group[j];
          const len = s.plan.nCtx;
          device.queue.writeBuffer(t.q, q, uploadable(inputs.q.subarray(s.start * e, (s.start + len) * e)));
          device.queue.writeBuffer(t.k, kv, uploadable(inputs.k.subarray(s.start * kvE, (s.start + len) * kvE)));
          device.queue.writeBuffer(t.v, kv, uploadable(inputs.v.subarray(s.start * kvE, (s.start + len) * kvE)));
        }
        for (let j = 0; j < group.length; j++) {
          const g = group[j];
          const p = g.s.plan;
          const chunk = { b0: 0, b1: 1, h0: 0, h1: H };
          if (isInference(p)) await this.encodeInference(enc, p, chunk, t, pad4(p.nCtx * e * es), pad4(p.nCtx * kvE * es), uploadedKv(p), null, lse?.out ?? null, { i: j, q: g.q, kv: g.kv, lse: g.lse });
          else await this.encode(enc, p, chunk, j, t, [g.q, g.kv, g.kv, g.q], pad4(p.nCtx * e * es), null, lse?.out ?? null, g.lse);
        }
        enc.copyBufferToBuffer(t.o, 0, staging, 0, qEnd);
        if (lse) enc.copyBufferToBuffer(lse.out, 0, lse.staging, 0, lseEnd);
        device.queue.submit([enc.finish()]);
      });
      if (lse) {
        await lse.staging.mapAsync(MODE_READ, 0, lseEnd);
        if (this.deadReason) throw new DeviceLostError(this.deadReason);
        try {
          checkStillWhole({ lse: inputs.lse! }, inputs.lse!.length);
          const all = new Float32Array(lse.staging.getMappedRange(0, lseEnd));
          for (const g of group) {
            const len = g.s.plan.nCtx;
            for (let h = 0; h < H; h++) inputs.lse!.set(all.subarray(g.lse / 4 + h * len, g.lse / 4 + (h + 1) * len), h * n + g.s.start);
          }
        } finally {
          lse.staging.unmap();
        }
      }
      await staging.mapAsync(MODE_READ, 0, qEnd);
      if (this.deadReason) throw new DeviceLostError(this.deadReason);
      try {
        checkStillWhole({ out }, n * e);
        const result = viewLike(out, staging.getMappedRange(0, qEnd), qEnd / es);
        for (const g of group) setFrom(out, result.subarray(g.q / es, g.q / es + g.s.plan.nCtx * e), g.s.start * e);
      } finally {
        staging.unmap();
      }
      done += group.reduce((a, g) => a + g.s.plan.nCtx, 0);
      inputs.progress?.(done / total);
    }
    const dispatches = segments.length;
    this.lastKernel = `packed: ${dispatches} sequence${dispatches === 1 ? '' : 's'}, one dispatch each, up to ${PACKED_GROUP} a submit`;
    return out;
  }

  /** The lse output of a chunk of n rows and its staging buffer. */
  private lseBuffers(n: number): { out: GPUBuffer; staging: GPUBuffer } {
    return { out: this.buffer('lse', n * 4, STORAGE | COPY_SRC), staging: this.buffer('lse-staging', n * 4, MAP_READ | COPY_DST) };
  }

  /** Copies n lse values from a staging buffer into `into` from index `at`. */
  private async readLse(staging: GPUBuffer, n: number, into: Float32Array, at: number): Promise<void> {
    await staging.mapAsync(MODE_READ, 0, n * 4);
    if (this.deadReason) throw new DeviceLostError(this.deadReason);
    try {
      checkStillWhole({ lse: into }, into.length);
      into.set(new Float32Array(staging.getMappedRange(0, n * 4)), at);
    } finally {
      staging.unmap();
    }
  }

  /** Runs fn inside validation and out-of-memory error scopes; a GPU error rejects. */
  private async scoped(fn: () => Promise<void>): Promise<void> {
    const device = this.check();
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let thrown: unknown = null;
    try {
      await fn();
    } catch (e) {
      thrown = e;
    }
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    if (thrown) throw thrown;
    const err = validation ?? oom;
    if (err) throw new KernelError(`WebGPU ${validation ? 'validation' : 'out-of-memory'} error: ${err.message}`);
  }
}

/** Bytes of one stored value: 4 (f32) or 2 (f16). */
function elementBytes(plan: Pick<Plan, 'dtype'>): number {
  return plan.dtype === 'float16' ? 2 : 4;
}

/** Bytes rounded up to whole 4-byte words (buffer copies, writes and storage bindings need them). */
function pad4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

/** A new zeroed array of x's type (Float32Array or Uint16Array) and length n. */
function newLike(x: TensorData, n: number): TensorData {
  return x instanceof Uint16Array ? new Uint16Array(n) : new Float32Array(n);
}

/** The first n values of a mapped range, as `like`'s type. */
function viewLike(like: TensorData, range: ArrayBuffer, n: number): TensorData {
  return like instanceof Uint16Array ? new Uint16Array(range, 0, n) : new Float32Array(range, 0, n);
}

/** out.set(part, at) for either array type (both of one type). */
function setFrom(out: TensorData, part: TensorData, at: number): void {
  (out as Float32Array).set(part as Float32Array, at);
}

/** [items, nCtx, heads h0..h1 · d] copy of a [batch, nCtx, nEmbd] tensor. */
function gatherHeads(x: TensorData, plan: Plan, c: Chunk): TensorData {
  const w = (c.h1 - c.h0) * plan.headDim;
  const rows = (c.b1 - c.b0) * plan.nCtx;
  const out = newLike(x, rows * w);
  const src0 = c.b0 * plan.nCtx * plan.nEmbd + c.h0 * plan.headDim;
  for (let r = 0; r < rows; r++) setFrom(out, x.subarray(src0 + r * plan.nEmbd, src0 + r * plan.nEmbd + w), r * w);
  return out;
}

function scatterHeads(part: TensorData, out: TensorData, plan: Plan, c: Chunk): void {
  const w = (c.h1 - c.h0) * plan.headDim;
  const rows = (c.b1 - c.b0) * plan.nCtx;
  const dst0 = c.b0 * plan.nCtx * plan.nEmbd + c.h0 * plan.headDim;
  for (let r = 0; r < rows; r++) setFrom(out, part.subarray(r * w, r * w + w), dst0 + r * plan.nEmbd);
}

/**
 * Data for queue.writeBuffer in an ordinary ArrayBuffer. The WebGPU spec allows shared
 * memory there, but Dawn's Node binding (npm `webgpu` 0.6) segfaulted on a view of a
 * SharedArrayBuffer (e.g. a createTensor() tensor): copy such views first.
 */
function unshared(x: TensorData): TensorData {
  return typeof SharedArrayBuffer !== 'undefined' && x.buffer instanceof SharedArrayBuffer ? x.slice() : x;
}

/**
 * x for queue.writeBuffer: unshared, and a whole number of 4-byte words (writes must be): an
 * odd count of halves is copied with one zero half after it, the only case that copies.
 */
function uploadable(x: TensorData): Uint8Array<ArrayBuffer> {
  const y = unshared(x);
  if (y.byteLength % 4 === 0) return new Uint8Array(y.buffer as ArrayBuffer, y.byteOffset, y.byteLength);
  const padded = new Uint16Array(y.length + 1);
  padded.set(y as Uint16Array);
  return new Uint8Array(padded.buffer);
}
