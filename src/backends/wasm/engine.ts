// The CPU engine: one WebAssembly.Memory, one kernel instance on the calling thread and
// (threaded builds) a worker pool over the same memory. Calls are serialised: each one
// lays out its tensors, layouts, tasks and scratch in linear memory, runs, and reads the
// output back. Memory grows to the largest call and is reused; wasm32 caps it at 4 GiB.
import type { Plan } from '../../plan.js';
import { forEachSequence } from '../../plan.js';
import type { BlockLayout } from '../../layout/block-layout.js';
import { type KernelExports, P, PACK_ROWS, PARAMS_BYTES, SEQ, SEQ_WORDS, TASK_WORDS, scratchBytes } from './abi.js';
import { type KernelChoice, type Variant, chooseKernel } from './kernels.js';
import { WorkerPool } from './pool.js';

const PAGE = 65536;
const MAX_BYTES = 65536 * PAGE; // wasm32: 4 GiB
const ALIGN = 64; // one cache line: no false sharing between threads' scratch

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/**
 * Kernel mask records (see the mask record in assembly/bsattn_fwd.ts): per mask, for each
 * 8-row tile [cLo, cHi, fLo, fHi] i32 — the columns with any allowed key and the longest
 * run of columns allowed for all 8 rows — then [kCol][qRow] i32 with -1 = allowed.
 */
export function maskRecordWords(bs: number): number {
  return bs * bs + bs / 2;
}
const kernelMasks = new WeakMap<BlockLayout, Int32Array>();
function masksFor(layout: BlockLayout): Int32Array {
  let m = kernelMasks.get(layout);
  if (!m) {
    const bs = layout.blockSize;
    const words = maskRecordWords(bs);
    const out = new Int32Array(layout.masks.length * words);
    layout.masks.forEach((mask, id) => {
      const base = id * words;
      const body = base + bs / 2;
      for (let t = 0; t < bs / 8; t++) {
        let lo = bs;
        let hi = 0;
        let runLo = 0;
        let bestLo = 0;
        let bestLen = 0;
        for (let c = 0; c < bs; c++) {
          let all = true;
          for (let r = t * 8; r < t * 8 + 8; r++) {
            if (mask[r * bs + c]) {
              lo = Math.min(lo, c);
              hi = Math.max(hi, c + 1);
            } else {
              all = false;
            }
          }
          if (!all) runLo = c + 1;
          else if (c + 1 - runLo > bestLen) {
            bestLo = runLo;
            bestLen = c + 1 - runLo;
          }
        }
        out.set([Math.min(lo, hi), hi, bestLo, bestLo + bestLen], base + 4 * t);
      }
      for (let r = 0; r < bs; r++) for (let c = 0; c < bs; c++) out[body + c * bs + r] = mask[r * bs + c] ? -1 : 0;
    });
    kernelMasks.set(layout, out);
    m = out;
  }
  return m;
}

export interface RunRequest {
  plan: Plan;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  threads: number;
  signal?: AbortSignal;
}

export class WasmEngine {
  readonly variant: Variant;
  readonly threaded: boolean;
  private readonly memory: WebAssembly.Memory;
  private readonly kernel: KernelExports;
  private readonly heapBase: number;
  private pool: WorkerPool | null = null;
  private poolSize = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private running = false;

  private constructor(choice: KernelChoice, memory: WebAssembly.Memory, kernel: KernelExports) {
    this.variant = choice.variant;
    this.threaded = choice.threaded;
    this.memory = memory;
    this.kernel = kernel;
    this.heapBase = align(kernel.heap_base());
    this.module = choice.module;
  }
  private readonly module: WebAssembly.Module;

  static create(wantThreads: boolean, variant?: Variant): WasmEngine {
    const choice = chooseKernel(wantThreads, variant);
    const memory = new WebAssembly.Memory(
      choice.threaded ? { initial: 1, maximum: 65536, shared: true } : { initial: 1, maximum: 65536 },
    );
    const instance = new WebAssembly.Instance(choice.module, { env: { memory } });
    return new WasmEngine(choice, memory, instance.exports as unknown as KernelExports);
  }

  /** Bytes of linear memory in use now (it never shrinks). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** Computes on the calling thread; throws if a threaded call is in flight. */
  runSync(req: RunRequest): Float32Array {
    if (this.running) {
      throw new Error('SparseAttention: forwardSync cannot run while a forward() call is computing; await it first');
    }
    this.running = true;
    try {
      const job = this.layOut(req, 1);
      job.copyQ();
      this.kernel.bsattn_pack_f32(job.params);
      this.kernel.bsattn_fwd_f32(job.params, job.scratch[0]);
      return job.read(new Float32Array(job.outLength));
    } finally {
      this.running = false;
    }
  }

  /** Computes on the worker pool (or the calling thread when single-threaded), one call at a time. */
  run(req: RunRequest): Promise<Float32Array> {
    const result = this.tail.then(() => this.runNow(req));
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async runNow(req: RunRequest): Promise<Float32Array> {
    req.signal?.throwIfAborted();
    // Threaded builds always compute in workers, even with one thread: forward() never
    // blocks the caller's event loop and an AbortSignal can stop it between tasks.
    if (!this.threaded) return this.runSync(req);
    const threads = Math.max(1, req.threads);
    await this.ensurePool(threads);
    this.running = true;
    try {
      // The calling thread is one more party to the barrier between packing and attention:
      // workers pack K and V while it copies Q in, then it arrives.
      const job = this.layOut(req, threads, threads + 1);
      const onAbort = () => Atomics.store(new Int32Array(this.memory.buffer), job.counter >> 2, job.nTasks);
      // (the packing phase is short and finishes; attention tasks stop being taken)
      req.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const done = this.pool!.run(threads, job.params, job.scratch);
        job.copyQ();
        const i32 = new Int32Array(this.memory.buffer);
        Atomics.add(i32, job.barrier >> 2, 1);
        Atomics.notify(i32, job.barrier >> 2);
        // Touch the result's pages while the workers compute: the page faults of a fresh
        // buffer cost as much as the copy itself.
        const out = new Float32Array(job.outLength).fill(0);
        await done;
        req.signal?.throwIfAborted();
        return job.read(out);
      } finally {
        req.signal?.removeEventListener('abort', onAbort);
      }
    } finally {
      this.running = false;
    }
  }

  private async ensurePool(threads: number): Promise<void> {
    if (this.pool && this.poolSize >= threads) return;
    this.pool?.terminate();
    this.pool = null;
    this.pool = await WorkerPool.create(threads, this.module, this.memory);
    this.poolSize = threads;
  }

  dispose(): void {
    this.pool?.terminate();
    this.pool = null;
  }

  /** Writes everything one call needs into linear memory; returns where it lies. */
  private layOut(req: RunRequest, threads: number, parties = threads) {
    const { plan } = req;
    const bs = plan.blockSize;
    const d = plan.headDim;
    const tensorBytes = plan.batch * plan.nCtx * plan.nEmbd * 4;

    // Sequences and tasks. Tasks are runs of query blocks, sized so that every thread
    // gets several, and queued most expensive first for the dynamic scheduler.
    const seqs: number[][] = [];
    forEachSequence(plan, (s) => {
      if (s.nQ > 0) seqs.push([s.b, s.h, s.token0, s.step, s.nQ, s.nK, s.layout]);
    });
    let totalQB = 0;
    for (const s of seqs) totalQB += Math.ceil(s[4] / bs);
    const chunk = Math.max(1, Math.floor(totalQB / (threads * 8)));
    const tasks: { seq: number; qb0: number; qb1: number; cost: number }[] = [];
    seqs.forEach((s, i) => {
      const layout = plan.layouts[s[6]];
      const nQB = Math.ceil(s[4] / bs);
      for (let qb0 = 0; qb0 < nQB; qb0 += Math.min(chunk, nQB)) {
        const qb1 = Math.min(nQB, qb0 + chunk);
        tasks.push({ seq: i, qb0, qb1, cost: layout.rowPtr[qb1] - layout.rowPtr[qb0] });
      }
    });
    tasks.sort((a, b) => b.cost - a.cost);

    // Linear memory map, from heap_base:
    // params · counters · seqs [nSeq][16] · tasks [nTask][4] · layouts · scratch × threads
    // · q k v o [batch, nCtx, nEmbd] · K' V' (K, V rows packed per sequence, [nK][d] each)
    let at = this.heapBase;
    const take = (bytes: number) => {
      const p = at;
      at = align(at + bytes);
      return p;
    };
    const params = take(PARAMS_BYTES);
    const counter = take(4);
    const packCounter = take(4);
    const barrier = take(4);
    const seqTable = take(seqs.length * SEQ_WORDS * 4);
    const taskTable = take(tasks.length * TASK_WORDS * 4);
    const layoutAt = plan.layouts.map((l) => {
      const nnz = l.cols.length;
      return {
        rowPtr: take(l.rowPtr.length * 4),
        cols: take(nnz * 4),
        maskIds: take(nnz * 4),
        masks: take(l.masks.length * maskRecordWords(bs) * 4),
      };
    });
    const sBytes = align(scratchBytes(d, bs));
    const scratch = Array.from({ length: threads }, () => take(sBytes));
    const qAt = take(tensorBytes);
    const kAt = take(tensorBytes);
    const vAt = take(tensorBytes);
    const oAt = take(tensorBytes);
    // K' [ceil(nK/4)][d][4] (keys interleaved in fours) and V' [nK][d] per sequence.
    const packedAt = seqs.map((s) => [take(Math.ceil(s[5] / 4) * 4 * d * 4), take(s[5] * d * 4)]);
    this.reserve(at);

    const buf = this.memory.buffer;
    const i32 = new Int32Array(buf);
    const f32 = new Float32Array(buf);
    i32[(params >> 2) + P.tasks] = taskTable;
    i32[(params >> 2) + P.nTasks] = tasks.length;
    i32[(params >> 2) + P.counter] = counter;
    i32[(params >> 2) + P.seqs] = seqTable;
    i32[(params >> 2) + P.headDim] = d;
    i32[(params >> 2) + P.block] = bs;
    f32[(params >> 2) + P.scale] = Math.LOG2E / Math.sqrt(d);
    i32[(params >> 2) + P.nSeqs] = seqs.length;
    i32[(params >> 2) + P.packCounter] = packCounter;
    i32[(params >> 2) + P.barrier] = barrier;
    i32[(params >> 2) + P.threads] = parties;
    // Packing tasks: (batch, group) units × chunks of PACK_ROWS tokens; sequence (b, h, g)
    // is entry (b·heads + h)·groups + g, which forEachSequence's order guarantees.
    const groups = plan.regroup > 0 ? Math.min(plan.regroup, plan.nCtx) : 1;
    if (seqs.length !== plan.batch * plan.heads * groups) throw new Error('SparseAttention: internal error: sequence count');
    i32[(params >> 2) + P.heads] = plan.heads;
    i32[(params >> 2) + P.groups] = groups;
    i32[(params >> 2) + P.packUnits] = plan.batch * groups;
    i32[(params >> 2) + P.packChunks] = Math.ceil(plan.seqLen / PACK_ROWS);
    i32[counter >> 2] = 0;
    i32[packCounter >> 2] = 0;
    i32[barrier >> 2] = 0;

    const rowBytes = plan.nEmbd * 4;
    seqs.forEach(([b, h, token0, step, nQ, nK, li], i) => {
      const e = (seqTable >> 2) + i * SEQ_WORDS;
      const first = (b * plan.nCtx + token0) * rowBytes + h * d * 4;
      i32[e + SEQ.q] = qAt + first;
      i32[e + SEQ.o] = oAt + first;
      i32[e + SEQ.stride] = step * rowBytes;
      i32[e + SEQ.k] = packedAt[i][0];
      i32[e + SEQ.v] = packedAt[i][1];
      i32[e + SEQ.kvStride] = d * 4;
      i32[e + SEQ.kSrc] = kAt + first;
      i32[e + SEQ.vSrc] = vAt + first;
      i32[e + SEQ.srcStride] = step * rowBytes;
      i32[e + SEQ.nQ] = nQ;
      i32[e + SEQ.nK] = nK;
      i32[e + SEQ.rowPtr] = layoutAt[li].rowPtr;
      i32[e + SEQ.cols] = layoutAt[li].cols;
      i32[e + SEQ.maskIds] = layoutAt[li].maskIds;
      i32[e + SEQ.masks] = layoutAt[li].masks;
    });
    tasks.forEach((t, i) => {
      const e = (taskTable >> 2) + i * TASK_WORDS;
      i32[e] = t.seq;
      i32[e + 1] = t.qb0;
      i32[e + 2] = t.qb1;
    });
    plan.layouts.forEach((l, li) => {
      i32.set(l.rowPtr, layoutAt[li].rowPtr >> 2);
      i32.set(l.cols, layoutAt[li].cols >> 2);
      i32.set(l.maskIds, layoutAt[li].maskIds >> 2);
      i32.set(masksFor(l), layoutAt[li].masks >> 2);
    });
    f32.set(req.k, kAt >> 2);
    f32.set(req.v, vAt >> 2);
    const n = tensorBytes >> 2;
    return {
      params,
      counter,
      barrier,
      nTasks: tasks.length,
      scratch,
      outLength: n,
      copyQ: () => new Float32Array(this.memory.buffer).set(req.q, qAt >> 2),
      read: (out: Float32Array) => {
        out.set(new Float32Array(this.memory.buffer, oAt, n));
        return out;
      },
    };
  }

  private reserve(end: number): void {
    if (end > MAX_BYTES) {
      throw new Error(
        `SparseAttention: this call needs ${(end / 2 ** 30).toFixed(2)} GiB of WebAssembly memory; ` +
          `wasm32 allows at most 4 GiB (split the batch, or use the webgpu backend)`,
      );
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
  }
}
