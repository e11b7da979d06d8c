// The CPU engine: one WebAssembly.Memory, one kernel instance on the calling thread and
// (threaded builds) a worker pool over the same memory. Calls are serialised: each one
// lays out its tensors, layouts, tasks and scratch in linear memory, runs, and reads the
// output back. Memory grows to the largest call and is reused; wasm32 caps it at 4 GiB.
import type { Plan } from '../../plan.js';
import { forEachSequence } from '../../plan.js';
import type { BlockLayout } from '../../layout/block-layout.js';
import { type KernelExports, P, PACK_ROWS, PARAMS_BYTES, SEQ, SEQ_WORDS, TASK_WORDS, scratchBytes } from './abi.js';
import { type KernelChoice, type Variant, chooseKernel } from './kernels.js';
import { rejectOnAbort } from '../../abort.js';
import { DisposedError, KernelError, MemoryLimitError, StateError, WorkerError, abortError, throwIfAborted } from '../../errors.js';
import { checkStillWhole } from '../../tensors.js';
import { WorkerLostError, WorkerPool, cancelCall } from './pool.js';
import { applyTrap, counters, faults } from './faults.js';

const PAGE = 65536;
const MAX_BYTES = 65536 * PAGE; // wasm32: 4 GiB
/** Work of one task at most (FLOPs, ~20–50 ms on one core): bounds how long an aborted call runs on. */
const TASK_FLOPS = 5e8;
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

/** A call needs more linear memory than wasm32 (or faults.maxMemoryBytes) allows; nothing was computed. */
function memoryLimitError(needed: number, limit: number, shape: readonly number[]): MemoryLimitError {
  return new MemoryLimitError(
    `a call of shape [${shape.join(', ')}] needs ${gib(needed)} (${needed} bytes) of WebAssembly ` +
      `memory; wasm32 allows at most ${gib(limit)} (${limit} bytes). Larger calls are split by batch item and ` +
      `head; one batch item of one head must fit (use a shorter nCtx, or the webgpu backend)`,
    needed,
    limit,
  );
}
const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 4 : 2)} GiB`;

const layoutIds = new WeakMap<object, number>();
let nextLayoutId = 1;

/** Identifies the tables of a call: same layouts object and head → layout map, shape, key lengths, threads. */
function staticKey(plan: Plan, threads: number, parties: number): string {
  let id = layoutIds.get(plan.layouts);
  if (id === undefined) layoutIds.set(plan.layouts, (id = nextLayoutId++));
  return `${id}|${plan.batch}|${plan.nCtx}|${plan.nEmbd}|${plan.heads}|${plan.headLayout.join(',')}|${plan.blockSize}|` +
    `${plan.keyLengths?.join(',') ?? ''}|${threads}|${parties}`;
}

/** The pool could not start its workers (as opposed to a worker lost during a call). */
class WorkerStartError extends WorkerError {}

export interface RunRequest {
  plan: Plan;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  threads: number;
  signal?: AbortSignal;
  /** Where the result goes (a tensor of this engine: written in place, no copy); else a new array. */
  out?: Float32Array;
  /** Fraction of the call's tasks done, while it computes. */
  progress?: (fraction: number) => void;
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
  /** Tables of the last call (layOut): reused while the plan shape repeats. */
  private lastStatic: ({ key: string } & ReturnType<WasmEngine['writeTables']>) | null = null;
  private running = false;
  private disposed = false;
  /** Why worker threads could not start for this engine; calls then run on the calling thread. */
  workersUnavailable: string | null = null;
  /**
   * Tensors handed out by allocTensor() live in [heapBase, tensorTop); every call lays out
   * its work area above them. `tensors` maps each live tensor's data to its byte offset.
   */
  private tensorTop = 0;
  private readonly freeRegions: { at: number; bytes: number }[] = [];
  private readonly tensors = new WeakMap<Float32Array, number>();
  /** End of the running (or last) call's work area: a tensor made during a call goes above it. */
  private workEnd = 0;

  private constructor(choice: KernelChoice, memory: WebAssembly.Memory, kernel: KernelExports) {
    this.variant = choice.variant;
    this.threaded = choice.threaded;
    this.memory = memory;
    this.kernel = kernel;
    this.heapBase = align(kernel.heap_base());
    this.tensorTop = this.heapBase;
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

  /**
   * A zeroed Float32Array of `length` floats inside this engine's linear memory: a call
   * whose q, k, v (or out) are such arrays reads (writes) them in place, without the copies
   * in and out. Only for a shared memory (threaded engine): a non-shared one detaches its
   * views when it grows. Null when the engine cannot give one.
   */
  allocTensor(length: number): Float32Array | null {
    if (!this.threaded) return null;
    const bytes = align(Math.max(4, length * 4));
    let at = -1;
    const i = this.freeRegions.findIndex((r) => r.bytes >= bytes);
    if (i >= 0) {
      const r = this.freeRegions[i];
      at = r.at;
      if (r.bytes === bytes) this.freeRegions.splice(i, 1);
      else this.freeRegions[i] = { at: r.at + bytes, bytes: r.bytes - bytes };
    } else {
      // Above the running call's work area, which is in use until that call settles (then
      // the gap between the old top and the new tensor is free for tensors).
      const top = this.tensorTop;
      at = this.running ? align(Math.max(top, this.workEnd)) : top;
      if (this.running) counters.tensorsDuringCalls++;
      if (at > top) void this.tail.then(() => this.freeRegion({ at: top, bytes: at - top }));
      try {
        this.reserve(at + bytes, [length]);
      } catch (e) {
        const limit = e instanceof MemoryLimitError ? e.limit : MAX_BYTES;
        throw new MemoryLimitError(
          `createTensor of ${length} floats does not fit: the engine's tensors would need ${gib(at + bytes)} ` +
            `of WebAssembly memory, at most ${gib(limit)} is possible (release tensors, or pass ordinary arrays)`,
          at + bytes,
          limit,
          { cause: e },
        );
      }
      this.tensorTop = at + bytes;
      this.lastStatic = null;
    }
    const data = new Float32Array(this.memory.buffer, at, length);
    data.fill(0);
    this.tensors.set(data, at);
    return data;
  }

  /** Returns a tensor's memory for reuse (after the call in flight, if any); false if not one of ours. */
  releaseTensor(data: Float32Array): boolean {
    const at = this.tensors.get(data);
    if (at === undefined) return false;
    this.tensors.delete(data);
    const region = { at, bytes: align(Math.max(4, data.length * 4)) };
    if (this.running) void this.tail.then(() => this.freeRegion(region));
    else this.freeRegion(region);
    return true;
  }

  /** Adds a region to the free list, coalesced; a free run at the top lowers tensorTop (the work area moves down). */
  private freeRegion(region: { at: number; bytes: number }): void {
    this.freeRegions.push(region);
    this.freeRegions.sort((a, b) => a.at - b.at);
    for (let j = this.freeRegions.length - 1; j > 0; j--) {
      const a = this.freeRegions[j - 1], b = this.freeRegions[j];
      if (a.at + a.bytes === b.at) this.freeRegions.splice(j - 1, 2, { at: a.at, bytes: a.bytes + b.bytes });
    }
    const last = this.freeRegions.at(-1);
    if (last && last.at + last.bytes === this.tensorTop && !this.running) {
      this.freeRegions.pop();
      this.tensorTop = last.at;
      this.lastStatic = null;
    }
  }

  /** Whether `data` is a live tensor of this engine. */
  isTensor(data: Float32Array): boolean {
    return this.tensors.has(data);
  }

  /** Byte offset of a live tensor of this engine holding exactly `length` floats, else -1. */
  private tensorAt(data: Float32Array | undefined, length: number): number {
    if (!data || data.length !== length) return -1;
    return this.tensors.get(data) ?? -1;
  }

  /** Computes on the calling thread; throws if a threaded call is in flight. */
  runSync(req: RunRequest): Float32Array {
    if (this.running) {
      throw new StateError('forwardSync cannot run while a forward() call is computing; await it first');
    }
    this.running = true;
    try {
      const job = this.layOut(req, 1);
      job.copyQ();
      applyTrap(this.memory, job.params);
      try {
        this.kernel.bsattn_pack_f32(job.params);
        this.kernel.bsattn_fwd_f32(job.params, job.scratch[0]);
      } catch (e) {
        // A trap leaves the instance usable (the kernels keep no state between calls).
        this.lastStatic = null;
        throw new KernelError(`the wasm kernel trapped: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      return job.read(req.out ?? new Float32Array(job.outLength));
    } finally {
      this.running = false;
    }
  }

  /** Computes on the worker pool (or the calling thread when single-threaded), one call at a time. */
  run(req: RunRequest): Promise<Float32Array> {
    const result = this.tail.then(() => this.runNow(req));
    this.tail = result.catch(() => undefined);
    return req.signal ? rejectOnAbort(result, req.signal) : result;
  }

  private async runNow(req: RunRequest): Promise<Float32Array> {
    if (this.disposed) throw new DisposedError('the CPU engine was disposed before this call ran');
    throwIfAborted(req.signal);
    // Threaded builds compute in workers, even with one thread: forward() never blocks the
    // caller's event loop and an AbortSignal can stop it between tasks. Where the workers
    // cannot start (a bundle without worker.js, a blocked script), the call runs here.
    if (!this.threaded || this.workersUnavailable) return this.runSync(req);
    try {
      return await this.runThreaded(req);
    } catch (e) {
      if (e instanceof WorkerStartError) {
        this.workersUnavailable = e.message.replace(/^SparseAttention: /, '');
        return this.runSync(req);
      }
      if (!(e instanceof WorkerLostError)) throw e;
      // Inputs are still the caller's: run the call once more on fresh workers.
      try {
        return await this.runThreaded(req);
      } catch (again) {
        if (!(again instanceof WorkerLostError)) throw again;
        throw new WorkerError(
          `a CPU worker died during this call and again during its retry (${again.message}); ` +
            'no result was produced; later calls start new workers',
          { cause: again },
        );
      }
    }
  }

  private async runThreaded(req: RunRequest): Promise<Float32Array> {
    const threads = Math.max(1, req.threads);
    await this.ensurePool(threads);
    this.running = true;
    try {
      // The calling thread is one more party to the barrier between packing and attention:
      // workers pack K and V while it copies Q in, then it arrives. layOut checks every
      // input first and copies K and V, so nothing is handed out before they are in place;
      // from there to the barrier nothing awaits, so Q cannot change in between.
      const job = this.layOut(req, threads, threads + 1);
      applyTrap(this.memory, job.params);
      // No more packing or attention tasks are taken; the running ones finish.
      const onAbort = () => cancelCall(this.memory, job.params, false);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const done = this.pool!.run(threads, job.params, job.scratch);
      const stopProgress = req.progress ? this.watchTasks(job.counter, job.nTasks, threads, req.progress) : null;
      try {
        try {
          job.copyQ();
        } catch (e) {
          // Release the workers waiting at the barrier, let the call settle, then report.
          cancelCall(this.memory, job.params, true);
          await done.catch(() => undefined);
          throw e;
        }
        const i32 = new Int32Array(this.memory.buffer);
        Atomics.add(i32, job.barrier >> 2, 1);
        Atomics.notify(i32, job.barrier >> 2);
        // A fresh result: touch its pages while the workers compute (a page fault per 4 KiB
        // costs ~1.5 µs here, 3 ms for 8 MiB); one write per page, fill() is slower.
        let out = req.out;
        if (!out) {
          out = new Float32Array(job.outLength);
          for (let i = 0; i < out.length; i += 1024) out[i] = 0;
        }
        await done;
        if (req.signal?.aborted) throw abortError(req.signal);
        return job.read(out);
      } finally {
        stopProgress?.();
        req.signal?.removeEventListener('abort', onAbort);
      }
    } catch (e) {
      this.lastStatic = null; // a failed call may have left its tables half-used or altered
      throw e;
    } finally {
      this.running = false;
    }
  }

  /** Polls the task counter while workers compute: tasks taken less those still running, of all. */
  private watchTasks(counter: number, nTasks: number, threads: number, report: (f: number) => void): () => void {
    const i32 = new Int32Array(this.memory.buffer);
    const timer = setInterval(() => {
      const taken = Math.min(nTasks, Atomics.load(i32, counter >> 2));
      report(Math.max(0, taken - threads) / Math.max(1, nTasks));
    }, 50);
    return () => clearInterval(timer);
  }

  private async ensurePool(threads: number): Promise<void> {
    if (this.pool && !this.pool.broken && this.poolSize >= threads) return;
    // A pool that lost a worker is replaced (its survivors are idle: the call settled).
    const old = this.pool;
    this.pool = null;
    await old?.terminate();
    let pool: WorkerPool;
    try {
      pool = await WorkerPool.create(threads, this.module, this.memory);
    } catch (e) {
      if (this.disposed) throw new DisposedError('the CPU engine was disposed while its workers started');
      throw new WorkerStartError(`CPU workers could not start (${e instanceof Error ? e.message.replace(/^SparseAttention: /, '') : String(e)})`, { cause: e });
    }
    // dispose() during the start: the new workers must not outlive it.
    if (this.disposed) {
      await pool.terminate();
      throw new DisposedError('the CPU engine was disposed while its workers started');
    }
    this.pool = pool;
    this.poolSize = threads;
  }

  /** Ends the workers (a call in flight rejects with a DisposedError); later calls are refused. */
  dispose(): void {
    this.disposed = true;
    void this.pool?.terminate(new DisposedError('the CPU engine was disposed during the call'));
    this.pool = null;
  }

  /** Workers in the pool now (0 before the first threaded call and after dispose). */
  get workers(): number {
    return this.pool?.size ?? 0;
  }

  /**
   * The call's tables in linear memory (see layOut), above the tensors; returns where each
   * piece lies. `resident`: byte offsets of q, k, v, o when they are tensors of this
   * engine, else -1 (then the work area holds a copy).
   */
  private writeTables(plan: Plan, threads: number, parties: number, resident: readonly number[]) {
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
    let totalPairs = 0;
    for (const s of seqs) {
      const nQB = Math.ceil(s[4] / bs);
      totalQB += nQB;
      totalPairs += plan.layouts[s[6]].rowPtr[nQB] - plan.layouts[s[6]].rowPtr[0];
    }
    // At most TASK_FLOPS per task, so that an abort or a failed worker stops a huge call promptly.
    const flopsPerQB = (4 * bs * bs * d * totalPairs) / Math.max(1, totalQB);
    const chunk = Math.max(1, Math.min(Math.floor(totalQB / (threads * 8)), Math.floor(TASK_FLOPS / flopsPerQB)));
    const tasks: { seq: number; qb0: number; qb1: number; cost: number }[] = [];
    seqs.forEach((s, i) => {
      const layout = plan.layouts[s[6]];
      const nQB = Math.ceil(s[4] / bs);
      for (let qb0 = 0; qb0 < nQB; qb0 += Math.min(chunk, nQB)) {
        const qb1 = Math.min(nQB, qb0 + chunk);
        tasks.push({ seq: i, qb0, qb1, cost: layout.rowPtr[qb1] - layout.rowPtr[qb0] });
      }
    });
    // Ties (every task of 'strided', of a bidirectional layout) run in (batch, group, query
    // block, head) order: consecutive tasks read and write the same token rows (each head a
    // slice of them), so rows stay in cache and pages in the TLB; a head at a time sweeps
    // the whole tensor once per group.
    tasks.sort((a, b) => {
      const sa = seqs[a.seq], sb = seqs[b.seq];
      return b.cost - a.cost || sa[0] - sb[0] || sa[2] - sb[2] || a.qb0 - b.qb0 || sa[1] - sb[1];
    });

    // Linear memory map, from heap_base:
    // params · counters · seqs [nSeq][16] · tasks [nTask][4] · layouts · scratch × threads
    // · q k v o [batch, nCtx, nEmbd] · K' V' (K, V rows packed per sequence, [nK][d] each)
    let at = align(this.tensorTop);
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
    const [qAt, kAt, vAt, oAt] = resident.map((r) => (r >= 0 ? r : take(tensorBytes)));
    // K' [ceil(nK/4)][d][4] (keys interleaved in fours) and V' [nK][d] per sequence.
    const packedAt = seqs.map((s) => [take(Math.ceil(s[5] / 4) * 4 * d * 4), take(s[5] * d * 4)]);
    this.reserve(at, [plan.batch, plan.nCtx, plan.nEmbd]);

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
    if (seqs.length !== plan.batch * plan.heads * groups) throw new KernelError('internal error: sequence count');
    i32[(params >> 2) + P.heads] = plan.heads;
    i32[(params >> 2) + P.groups] = groups;
    i32[(params >> 2) + P.packUnits] = plan.batch * groups;
    i32[(params >> 2) + P.packChunks] = Math.ceil(plan.seqLen / PACK_ROWS);

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
    return { params, counter, packCounter, barrier, nTasks: tasks.length, scratch, qAt, kAt, vAt, oAt, end: at };
  }

  /**
   * Writes everything one call needs into linear memory; returns where it lies. The tables
   * (sequences, tasks, layouts, parameters) of the last call are kept: a call with the same
   * plan shape reuses them and only resets the counters and copies its tensors in.
   */
  private layOut(req: RunRequest, threads: number, parties = threads) {
    const { plan } = req;
    const n = plan.batch * plan.nCtx * plan.nEmbd;
    // The caller's arrays may have been detached or swapped since the call was made.
    checkStillWhole({ 'q.data': req.q, 'k.data': req.k, 'v.data': req.v, out: req.out }, n);
    // Tensors of this engine are read and written in place (their offsets join the key).
    const resident = [req.q, req.k, req.v, req.out].map((t) => this.tensorAt(t, n));
    const key = `${staticKey(plan, threads, parties)}|${this.tensorTop}|${resident.join(',')}`;
    if (this.lastStatic?.key !== key) this.lastStatic = { key, ...this.writeTables(plan, threads, parties, resident) };
    const { params, counter, packCounter, barrier, nTasks, scratch, qAt, kAt, vAt, oAt, end } = this.lastStatic;
    this.workEnd = end;
    const buf = this.memory.buffer;
    const i32 = new Int32Array(buf);
    const f32 = new Float32Array(buf);
    i32[counter >> 2] = 0;
    i32[packCounter >> 2] = 0;
    i32[barrier >> 2] = 0;
    // >>> 2: offsets past 2 GiB stay positive
    if (resident[1] < 0) f32.set(req.k, kAt >>> 2);
    if (resident[2] < 0) f32.set(req.v, vAt >>> 2);
    return {
      params,
      counter,
      barrier,
      nTasks,
      scratch,
      outLength: n,
      copyQ: () => {
        if (resident[0] < 0) new Float32Array(this.memory.buffer).set(req.q, qAt >>> 2);
      },
      read: (out: Float32Array) => {
        checkStillWhole({ out }, n);
        if (resident[3] < 0) out.set(new Float32Array(this.memory.buffer, oAt, n));
        return out;
      },
    };
  }

  /** Grows memory to `end` bytes, or throws before anything was written. */
  private reserve(end: number, shape: readonly number[]): void {
    const limit = Math.min(MAX_BYTES, faults.maxMemoryBytes ?? MAX_BYTES);
    if (end > limit) throw memoryLimitError(end, limit, shape);
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    try {
      this.memory.grow(Math.ceil((end - have) / PAGE));
    } catch (e) {
      throw new MemoryLimitError(
        `could not grow WebAssembly memory from ${gib(have)} to ${gib(end)} ` +
          `(${e instanceof Error ? e.message : String(e)}); nothing was computed`,
        end,
        have,
        { cause: e },
      );
    }
  }
}

