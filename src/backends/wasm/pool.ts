// A pool of kernel workers over one shared WebAssembly.Memory. Node and Bun use
// worker_threads (unref'd: the pool never keeps a process alive); Deno and browsers use
// module Workers. Work is handed out by an atomic task counter in the shared memory, so
// the pool only says "run" and waits for every worker to report.
//
// Faults: a call settles only when every worker it was sent to has replied or died, so
// no worker still touches the memory when the next call lays out its buffers. When a
// worker dies or reports an error mid-call, the pool cancels the call in memory (no more
// tasks; the barrier between the phases released) so that the others return promptly,
// then rejects. A pool that lost a worker is `broken`; the engine replaces it.
import { P } from './abi.js';
import { KernelError, WorkerError } from '../../errors.js';
import { type WorkerFault, counters, faults, takeWorkerFault } from './faults.js';

interface WorkerLike {
  postMessage(m: unknown): void;
  terminate(): unknown;
  /** worker_threads: whether the worker keeps the process alive (referenced only during calls). */
  ref?(): void;
  unref?(): void;
}

type Message = { type: 'ready' } | { type: 'done'; id: number } | { type: 'error'; id: number; message: string };

/** Barrier value that releases every waiting worker (see worker.ts barrier()). */
export const BARRIER_RELEASED = 0x40000000;

/** A worker of the pool died (exited or was terminated) during a call. */
export class WorkerLostError extends WorkerError {}

/** Stops a laid-out call: no more packing or attention tasks are taken; optionally releases the barrier. */
export function cancelCall(memory: WebAssembly.Memory, params: number, releaseBarrier: boolean): void {
  const i32 = new Int32Array(memory.buffer);
  const p = params >> 2;
  // Past every packing task (units × chunks, see bsattn_pack_f32); adds stay far from overflow.
  Atomics.store(i32, i32[p + P.packCounter] >> 2, 1 << 30);
  Atomics.store(i32, i32[p + P.counter] >> 2, i32[p + P.nTasks]);
  if (releaseBarrier) {
    const at = i32[p + P.barrier] >> 2;
    Atomics.store(i32, at, BARRIER_RELEASED);
    Atomics.notify(i32, at);
  }
}

interface Call {
  id: number;
  params: number;
  /** Workers that have not replied yet. */
  waiting: Set<number>;
  error: Error | null;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class WorkerPool {
  private readonly workers: WorkerLike[] = [];
  private readonly exited: Promise<void>[] = [];
  private call: Call | null = null;
  private nextId = 1;
  private terminating = false;
  private readonly onTerminate: (() => void)[] = [];
  /** Set when a worker died: the pool takes no more calls. */
  broken: Error | null = null;

  private constructor(private readonly memory: WebAssembly.Memory) {}

  static async create(size: number, module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<WorkerPool> {
    const pool = new WorkerPool(memory);
    counters.poolsStarted++;
    const url = new URL('./worker.js', import.meta.url);
    const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string';
    const ready: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      let w: WorkerLike;
      let onReady!: () => void;
      let onFail!: (e: Error) => void;
      ready.push(new Promise<void>((res, rej) => { onReady = res; onFail = rej; }));
      const onMessage = (m: Message) => {
        if (m.type === 'ready') onReady();
        else pool.settle(i, m);
      };
      const onLost = (why: string) => {
        const err = new WorkerLostError(`CPU worker ${i} ${why}`);
        onFail(err);
        pool.lost(i, err);
      };
      counters.workersStarted++;
      counters.workersAlive++;
      if (isNode) {
        const { Worker } = await import('node:worker_threads');
        const nw = new Worker(url);
        // Listeners first, then unref(): in Node 20 a 'message' listener added after
        // unref() re-refs the worker, and a forgotten dispose() then keeps the process alive.
        nw.on('message', onMessage);
        nw.on('error', (e) => onLost(`failed to load or run ${url.href}: ${e instanceof Error ? e.message : String(e)}`));
        pool.exited.push(new Promise<void>((res) => nw.once('exit', (code) => {
          counters.workersAlive--;
          if (!pool.terminating) onLost(`exited with code ${code}`);
          res();
        })));
        w = nw;
      } else {
        const ww = new Worker(url, { type: 'module' });
        ww.onmessage = (e: MessageEvent) => onMessage(e.data as Message);
        ww.onerror = (e: ErrorEvent) => { e.preventDefault?.(); onLost(`failed to load or run ${url.href}: ${e.message || 'the script could not be loaded'}`); };
        // Web workers report no exit: count them gone once terminated.
        pool.exited.push(new Promise<void>((res) => pool.onTerminate.push(() => { counters.workersAlive--; res(); })));
        w = ww;
      }
      w.postMessage({ type: 'init', module, memory });
      pool.workers.push(w);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await pool.terminate();
      throw e;
    }
    // Idle workers never keep the process alive (a forgotten dispose() must not hang it);
    // run() references them while a call computes.
    pool.setRef(false);
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Asks `count` workers to run the kernel on their own scratch; resolves when all return,
   * rejects (after all returned or died) when one failed.
   */
  run(count: number, params: number, scratch: readonly number[]): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    const fault = takeWorkerFault();
    this.setRef(true);
    return new Promise<void>((resolve, reject) => {
      this.call = { id, params, waiting: new Set(Array.from({ length: count }, (_, i) => i)), error: null, resolve, reject };
      for (let i = 0; i < count; i++) {
        const f: WorkerFault | undefined = fault?.worker === i ? fault.when : undefined;
        this.workers[i].postMessage({ type: 'run', id, params, scratch: scratch[i], fault: f });
      }
      faults.onRun?.((i) => void this.workers[i]?.terminate());
    });
  }

  /** Ends every worker; resolves once they have exited (Node) or been told to (web). A call in flight rejects with `reason`. */
  terminate(reason: Error = new WorkerError('the CPU worker pool was terminated')): Promise<void> {
    this.terminating = true;
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
    this.onTerminate.splice(0).forEach((f) => f());
    this.broken ??= reason;
    if (this.call) this.finish(this.broken);
    return Promise.all(this.exited).then(() => undefined);
  }

  private settle(worker: number, m: Message): void {
    const call = this.call;
    if (m.type === 'ready' || !call || m.id !== call.id || !call.waiting.has(worker)) return;
    if (m.type === 'error') {
      call.error ??= new KernelError(`the wasm kernel failed in a worker: ${m.message}`);
      cancelCall(this.memory, call.params, true);
    }
    call.waiting.delete(worker);
    if (call.waiting.size === 0) this.finish(call.error);
  }

  private lost(worker: number, err: Error): void {
    this.broken ??= err;
    const call = this.call;
    if (!call || !call.waiting.has(worker)) return;
    call.error ??= err;
    // The others may wait for it at the barrier or take tasks it would have done: stop the call.
    cancelCall(this.memory, call.params, true);
    call.waiting.delete(worker);
    if (call.waiting.size === 0) this.finish(call.error);
  }

  private setRef(on: boolean): void {
    for (const w of this.workers) (on ? w.ref : w.unref)?.call(w);
  }

  private finish(error: Error | null): void {
    const call = this.call!;
    this.call = null;
    this.setRef(false);
    if (error) call.reject(error);
    else call.resolve();
  }
}
