// The dense kernels on several threads: the .mt builds of assembly/dense.ts over one shared
// WebAssembly.Memory, instantiated on this thread and on `threads − 1` workers
// (dense-worker.mjs). A call splits its output panels (matmul) or elements (swiglu) evenly;
// every output is computed by exactly one thread in the same order as on one thread, so the
// results are bit-identical to the single-threaded engine's. Calls of fewer than MIN_ROWS
// rows (decode steps) stay on this thread: waking workers costs more than the work.
// Synchronisation: a control block of Int32s in the shared memory, Atomics.wait/notify.
import { WasmDense } from './dense.mjs';

/** Rows below which a call runs on the calling thread only (a decode step's ~0.05 ms matmul). */
const MIN_ROWS = 16;
/** The control block: bytes 1024… of the first page, which the allocator never hands out. */
const CTL = 1024;
const GEN = 0, DONE = 1, OP = 2, ARGS = 3;
const OP_MATMUL = 1, OP_SWIGLU = 2, OP_EXIT = 3;
const READY_TIMEOUT_MS = 10_000;

/** Share `i` of `T` of [0, total), aligned to `align`. */
export function share(total, i, T, align = 1) {
  const units = Math.ceil(total / align);
  const a = Math.floor((units * i) / T) * align;
  const b = Math.min(total, Math.floor((units * (i + 1)) / T) * align);
  return [a, b];
}

/**
 * A worker running dense-worker.mjs, with `onMessage`/`onError` attached. Node, Bun and Deno
 * (process.versions.node): worker_threads, which can be unref'd once started (see ready());
 * browsers: a module Worker.
 */
async function spawn(url, onMessage, onError) {
  if (typeof globalThis.process?.versions?.node === 'string') {
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(url);
    w.on('message', onMessage);
    w.on('error', onError);
    return w;
  }
  const w = new globalThis.Worker(url, { type: 'module' });
  w.onmessage = (e) => onMessage(e.data);
  w.onerror = (e) => {
    e.preventDefault?.();
    onError(new Error(e.message || `could not load ${url.href}`));
  };
  return w;
}

class ThreadedDense extends WasmDense {
  constructor(instance, variant, memory, workers) {
    super(instance, variant, memory);
    this.workers = workers;
    this.threads = workers.length + 1;
    this.name = `wasm ${variant}, ${this.threads} threads`;
    this.ctl = new Int32Array(memory.buffer, CTL, 16);
    // The main thread of a page may not block: it spins on the done count instead.
    try {
      Atomics.wait(this.ctl, 15, 1, 0);
      this.canBlock = true;
    } catch {
      this.canBlock = false;
    }
  }
  run(op, args, mine) {
    const ctl = this.ctl;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, OP, op);
    args.forEach((a, i) => Atomics.store(ctl, ARGS + i, a));
    Atomics.add(ctl, GEN, 1);
    Atomics.notify(ctl, GEN);
    mine();
    const want = this.threads - 1;
    for (let d; (d = Atomics.load(ctl, DONE)) < want;) if (this.canBlock) Atomics.wait(ctl, DONE, d, 50);
  }
  matmul(x, W, y, n, acc) {
    if (n < MIN_ROWS) return super.matmul(x, W, y, n, acc);
    const panels = W.out / 8;
    const [p0, p1] = share(panels, 0, this.threads);
    this.run(OP_MATMUL, [x.byteOffset, W.p.byteOffset, y.byteOffset, n, W.inp, W.out, acc ? 1 : 0, this.threads], () =>
      this.exports.matmul(x.byteOffset, W.p.byteOffset, y.byteOffset, n, W.inp, W.out, acc ? 1 : 0, p0, p1));
  }
  swiglu(g, u, count) {
    if (count < MIN_ROWS * 256) return super.swiglu(g, u, count);
    const [a, b] = share(count, 0, this.threads, 4);
    this.run(OP_SWIGLU, [g.byteOffset, u.byteOffset, count, this.threads], () => this.exports.swiglu(g.byteOffset, u.byteOffset, a, b));
  }
  dispose() {
    if (!this.workers.length) return;
    Atomics.store(this.ctl, OP, OP_EXIT);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}

/**
 * { dense } with `threads` threads, or { why } when this runtime cannot (no shared memory, no
 * workers, a worker that failed to start in 10 s).
 * @param {{ relaxed?: Uint8Array, simd?: Uint8Array }} bytes the .mt builds
 */
export async function createThreadedDense(bytes, threads) {
  if (typeof SharedArrayBuffer !== 'function' || globalThis.crossOriginIsolated === false) return { why: 'no shared memory here (SharedArrayBuffer, or a page without cross-origin isolation)' };
  let variant = null;
  for (const v of ['relaxed', 'simd']) {
    if (bytes[v] && WebAssembly.validate(bytes[v])) {
      variant = v;
      break;
    }
  }
  if (!variant) return { why: 'no .mt dense build validates here' };
  let memory;
  try {
    memory = new WebAssembly.Memory({ initial: 2, maximum: 16384, shared: true });
  } catch (e) {
    return { why: `shared WebAssembly.Memory: ${e.message}` };
  }
  const module = await WebAssembly.compile(bytes[variant]);
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const workers = [];
  try {
    const url = new URL('./dense-worker.mjs', import.meta.url);
    for (let i = 1; i < threads; i++) {
      let settle;
      const ready = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker ${i} did not start in ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
        settle = (err) => {
          clearTimeout(timer);
          err ? reject(err) : resolve();
        };
      });
      const w = await spawn(url, (m) => settle(m === 'ready' ? null : new Error(`worker ${i}: ${m}`)), (e) => settle(new Error(`worker ${i}: ${e.message}`)));
      workers.push(w);
      w.postMessage({ bytes: bytes[variant], memory, ctl: CTL, index: i });
      await ready;
      // Listeners are attached: an idle worker must not keep the process alive (a forgotten
      // dispose() would hang it), and in Node 20 a listener added after unref() re-refs it.
      w.unref?.();
    }
  } catch (e) {
    for (const w of workers) w.terminate();
    return { why: `dense workers: ${e.message}` };
  }
  return { dense: new ThreadedDense(instance, variant, memory, workers) };
}
