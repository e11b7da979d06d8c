// Worker entry (dist/worker.js): instantiates the threaded kernel over the shared
// WebAssembly.Memory it is sent, then runs tasks on request. Speaks both Node's
// worker_threads (parentPort) and the web Worker API (self), whichever delivers.
import type { KernelExports } from './abi.js';

type Reply = (msg: unknown) => void;
interface InitMsg { type: 'init'; module: WebAssembly.Module; memory: WebAssembly.Memory }
interface RunMsg { type: 'run'; id: number; params: number; scratch: number }

let kernel: KernelExports | null = null;

async function handle(msg: InitMsg | RunMsg, reply: Reply): Promise<void> {
  if (msg.type === 'init') {
    const instance = await WebAssembly.instantiate(msg.module, { env: { memory: msg.memory } });
    kernel = instance.exports as unknown as KernelExports;
    reply({ type: 'ready' });
    return;
  }
  try {
    const ran = kernel!.bsattn_fwd_f32(msg.params, msg.scratch);
    reply({ type: 'done', id: msg.id, ran });
  } catch (e) {
    reply({ type: 'error', id: msg.id, message: e instanceof Error ? e.message : String(e) });
  }
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
