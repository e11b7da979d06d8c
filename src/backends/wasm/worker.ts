// Worker entry (dist/worker.js): instantiates the threaded kernel over the shared
// WebAssembly.Memory it is sent, then runs tasks on request. Speaks both Node's
// worker_threads (parentPort) and the web Worker API (self), whichever delivers.
import { type KernelExports, P } from './abi.js';

type Reply = (msg: unknown) => void;
interface InitMsg { type: 'init'; module: WebAssembly.Module; memory: WebAssembly.Memory }
interface RunMsg {
  type: 'run';
  id: number;
  params: number;
  scratch: number;
  /** Test-only (faults.ts workerExit): exit this thread at that point of the call. */
  fault?: 'exit-before-barrier' | 'exit-after-barrier';
}

let kernel: KernelExports | null = null;
let memory: WebAssembly.Memory | null = null;

/**
 * Waits until every thread of this call has packed (params: see abi.ts P.barrier, P.threads).
 * The host releases it by storing a value >= threads (pool.ts BARRIER_RELEASED) when a
 * thread of the call died or failed, so that the survivors never wait forever.
 */
function barrier(params: number): void {
  const i32 = new Int32Array(memory!.buffer);
  const at = i32[(params >> 2) + P.barrier] >> 2;
  const threads = i32[(params >> 2) + P.threads];
  if (Atomics.add(i32, at, 1) + 1 >= threads) {
    Atomics.notify(i32, at);
    return;
  }
  for (let n = Atomics.load(i32, at); n < threads; n = Atomics.load(i32, at)) Atomics.wait(i32, at, n);
}

async function handle(msg: InitMsg | RunMsg, reply: Reply): Promise<void> {
  if (msg.type === 'init') {
    const instance = await WebAssembly.instantiate(msg.module, { env: { memory: msg.memory } });
    kernel = instance.exports as unknown as KernelExports;
    memory = msg.memory;
    reply({ type: 'ready' });
    return;
  }
  try {
    kernel!.bsattn_pack_f32(msg.params);
    if (msg.fault === 'exit-before-barrier') exitThread();
    barrier(msg.params);
    if (msg.fault === 'exit-after-barrier') exitThread();
    const ran = kernel!.bsattn_fwd_f32(msg.params, msg.scratch);
    reply({ type: 'done', id: msg.id, ran });
  } catch (e) {
    reply({ type: 'error', id: msg.id, message: e instanceof Error ? e.message : String(e) });
  }
}

function exitThread(): void {
  const g = globalThis as { process?: { exit(code: number): void }; close?: () => void };
  if (g.process) g.process.exit(1); // worker_threads: ends this thread only
  else g.close?.();
}

const web = globalThis as unknown as {
  WorkerGlobalScope?: unknown;
  postMessage?: (m: unknown) => void;
  addEventListener?: (t: string, f: (e: { data: unknown }) => void) => void;
};
if (typeof web.WorkerGlobalScope !== 'undefined' && typeof web.addEventListener === 'function') {
  web.addEventListener('message', (e) => void handle(e.data as InitMsg | RunMsg, (m) => web.postMessage!(m)));
} else {
  const { parentPort } = await import('node:worker_threads');
  parentPort!.on('message', (m: InitMsg | RunMsg) => void handle(m, (r) => parentPort!.postMessage(r)));
}
