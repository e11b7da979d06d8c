// A pool of kernel workers over one shared WebAssembly.Memory. Node and Bun use
// worker_threads (unref'd: the pool never keeps a process alive); Deno and browsers use
// module Workers. Work is handed out by an atomic task counter in the shared memory, so
// the pool only says "run" and waits for every worker to report.

interface WorkerLike {
  postMessage(m: unknown): void;
  terminate(): unknown;
}
interface Pending { resolve: () => void; reject: (e: Error) => void; left: number }

type Message = { type: 'ready' } | { type: 'done'; id: number } | { type: 'error'; id: number; message: string };

export class WorkerPool {
  private readonly workers: WorkerLike[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private broken: Error | null = null;

  private constructor() {}

  static async create(size: number, module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<WorkerPool> {
    const pool = new WorkerPool();
    const url = new URL('./worker.js', import.meta.url);
    const isNode = typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string'
      && typeof (globalThis as { Deno?: unknown }).Deno === 'undefined';
    const ready: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      let w: WorkerLike;
      let onReady!: () => void;
      let onFail!: (e: Error) => void;
      ready.push(new Promise<void>((res, rej) => { onReady = res; onFail = rej; }));
      const onMessage = (m: Message) => {
        if (m.type === 'ready') onReady();
        else pool.settle(m);
      };
      const onError = (e: unknown) => {
        const err = new Error(`SparseAttention: a CPU worker failed: ${e instanceof Error ? e.message : String((e as { message?: string })?.message ?? e)}`);
        onFail(err);
        pool.fail(err);
      };
      if (isNode) {
        const { Worker } = await import('node:worker_threads');
        const nw = new Worker(url);
        nw.unref();
        nw.on('message', onMessage);
        nw.on('error', onError);
        nw.on('exit', (code) => { if (code !== 0) onError(new Error(`worker exited with code ${code}`)); });
        w = nw;
      } else {
        const ww = new Worker(url, { type: 'module' });
        ww.onmessage = (e: MessageEvent) => onMessage(e.data as Message);
        ww.onerror = (e: ErrorEvent) => { e.preventDefault?.(); onError(new Error(e.message)); };
        w = ww;
      }
      w.postMessage({ type: 'init', module, memory });
      pool.workers.push(w);
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      pool.terminate();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Asks `count` workers to run the kernel on their own scratch; resolves when all return. */
  run(count: number, params: number, scratch: readonly number[]): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, left: count });
      for (let i = 0; i < count; i++) this.workers[i].postMessage({ type: 'run', id, params, scratch: scratch[i] });
    });
  }

  terminate(): void {
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
    this.fail(new Error('SparseAttention: the CPU worker pool was terminated'));
  }

  private settle(m: Message): void {
    if (m.type === 'ready') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    if (m.type === 'error') {
      this.pending.delete(m.id);
      p.reject(new Error(`SparseAttention: the wasm kernel failed in a worker: ${m.message}`));
    } else if (--p.left === 0) {
      this.pending.delete(m.id);
      p.resolve();
    }
  }

  private fail(err: Error): void {
    this.broken ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
