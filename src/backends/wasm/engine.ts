// The CPU engine: one WebAssembly.Memory (arena.ts), one kernel instance on the calling
// thread and (threaded builds) a worker pool over the same memory. This file schedules the
// calls: they are serialised, each one laid out in linear memory (tables.ts), run on the
// calling thread or the workers (with the barrier between packing and attention, aborts,
// progress and one retry when a worker dies), and its output read back.
import type { KernelExports } from './abi.js';
import { MemoryArena } from './arena.js';
import { type KernelChoice, type Variant, chooseKernel, instantiateKernel } from './kernels.js';
import { CallTables, type CallData } from './tables.js';
import type { TensorData } from '../backend.js';
import { rejectOnAbort } from '../../abort.js';
import { DisposedError, KernelError, StateError, WorkerError, abortError, throwIfAborted } from '../../errors.js';
import { WorkerLostError, WorkerPool, cancelCall } from './pool.js';
import { applyTrap } from './faults.js';

/** The pool could not start its workers (as opposed to a worker lost during a call). */
class WorkerStartError extends WorkerError {}

export interface RunRequest extends CallData {
  threads: number;
  /** Compute on the calling thread even in a threaded engine (a call smaller than a worker round trip). */
  inline?: boolean;
  signal?: AbortSignal;
  /** Fraction of the call's tasks done, while it computes. */
  progress?: (fraction: number) => void;
}

export class WasmEngine {
  readonly variant: Variant;
  readonly threaded: boolean;
  private readonly memory: WebAssembly.Memory;
  private readonly kernel: KernelExports;
  private readonly module: WebAssembly.Module;
  private readonly arena: MemoryArena;
  private readonly tables: CallTables;
  private pool: WorkerPool | null = null;
  private poolSize = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;
  /** Why worker threads could not start for this engine; calls then run on the calling thread. */
  workersUnavailable: string | null = null;

  private constructor(choice: KernelChoice, memory: WebAssembly.Memory, kernel: KernelExports) {
    this.variant = choice.variant;
    this.threaded = choice.threaded;
    this.memory = memory;
    this.kernel = kernel;
    this.module = choice.module;
    // Frees of tensors released during a call wait for the calls queued now; a tensor
    // made or freed at the top moves the work area, so the last call's tables go.
    this.arena = new MemoryArena(memory, kernel.heap_base(), (f) => void this.tail.then(f), () => this.tables.invalidate());
    this.tables = new CallTables(this.arena, kernel);
  }

  static create(wantThreads: boolean, variant?: Variant): WasmEngine {
    const choice = chooseKernel(wantThreads, variant);
    const memory = new WebAssembly.Memory(
      choice.threaded ? { initial: 1, maximum: 65536, shared: true } : { initial: 1, maximum: 65536 },
    );
    return new WasmEngine(choice, memory, instantiateKernel(choice, memory));
  }

  /** Bytes of linear memory in use now (it never shrinks). */
  get memoryBytes(): number {
    return this.arena.bytes;
  }

  /**
   * A zeroed Float32Array of `length` floats inside this engine's linear memory: a call
   * whose q, k, v (or out) are such arrays reads (writes) them in place, without the copies
   * in and out. Only for a shared memory (threaded engine): a non-shared one detaches its
   * views when it grows. Null when the engine cannot give one.
   */
  allocTensor(length: number): Float32Array | null {
    return this.threaded ? this.arena.allocTensor(length) : null;
  }

  /** Returns a tensor's memory for reuse (after the call in flight, if any); false if not one of ours. */
  releaseTensor(data: Float32Array): boolean {
    return this.arena.releaseTensor(data);
  }

  /** Whether `data` is a live tensor of this engine. */
  isTensor(data: Float32Array): boolean {
    return this.arena.isTensor(data);
  }

  /** Byte offset of a live tensor of this engine (a KV cache's regions). */
  tensorOffset(data: Float32Array): number {
    const at = this.arena.tensorAt(data, data.length);
    if (at < 0) throw new StateError('internal error: not a tensor of this engine');
    return at;
  }

  /** Computes on the calling thread; throws if a threaded call is in flight. */
  runSync(req: RunRequest): TensorData {
    if (this.arena.busy) {
      throw new StateError('forwardSync cannot run while a forward() call is computing; await it first');
    }
    this.arena.busy = true;
    try {
      const job = this.tables.layOut(req, 1);
      job.copyQ();
      applyTrap(this.memory, job.params);
      try {
        this.kernel.bsattn_pack_f32(job.params);
        this.kernel.bsattn_fwd_f32(job.params, job.scratch[0]);
      } catch (e) {
        // A trap leaves the instance usable (the kernels keep no state between calls).
        this.tables.invalidate();
        throw new KernelError(`the wasm kernel trapped: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      return job.read(req.out ?? job.alloc());
    } finally {
      this.arena.busy = false;
    }
  }

  /** Computes on the worker pool (or the calling thread when single-threaded), one call at a time. */
  run(req: RunRequest): Promise<TensorData> {
    const result = this.tail.then(() => this.runNow(req));
    this.tail = result.catch(() => undefined);
    return req.signal ? rejectOnAbort(result, req.signal) : result;
  }

  private async runNow(req: RunRequest): Promise<TensorData> {
    if (this.disposed) throw new DisposedError('the CPU engine was disposed before this call ran');
    throwIfAborted(req.signal);
    // Threaded builds compute in workers, even with one thread: forward() does not block the
    // caller's event loop and an AbortSignal can stop it between tasks — except a call whose
    // work is smaller than the round trip to the workers (`inline`). Where the workers
    // cannot start (a bundle without worker.js, a blocked script), the call runs here.
    if (!this.threaded || this.workersUnavailable || req.inline) return this.runSync(req);
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

  private async runThreaded(req: RunRequest): Promise<TensorData> {
    const threads = Math.max(1, req.threads);
    await this.ensurePool(threads);
    this.arena.busy = true;
    try {
      // The calling thread is one more party to the barrier between packing and attention:
      // workers pack K and V while it copies Q in, then it arrives. layOut checks every
      // input first and copies K and V, so nothing is handed out before they are in place;
      // from there to the barrier nothing awaits, so Q cannot change in between.
      const job = this.tables.layOut(req, threads, threads + 1);
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
          out = job.alloc();
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
      this.tables.invalidate(); // a failed call may have left its tables half-used or altered
      throw e;
    } finally {
      this.arena.busy = false;
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
}
