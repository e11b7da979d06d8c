// A dense-threads.mjs worker: instantiates the .mt kernel over the shared memory it is sent,
// answers 'ready', then blocks on the control block's generation counter and computes its
// share of each call (panels for matmul, elements for swiglu) until told to exit.
import { share } from './dense-threads.mjs';

const GEN = 0, DONE = 1, OP = 2, ARGS = 3;
const OP_MATMUL = 1, OP_SWIGLU = 2, OP_EXIT = 3;

function start({ bytes, memory, ctl: at, index }, reply) {
  let exports;
  try {
    exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
  } catch (e) {
    reply(`instantiate: ${e.message}`);
    return;
  }
  const ctl = new Int32Array(memory.buffer, at, 16);
  let gen = Atomics.load(ctl, GEN);
  reply('ready');
  for (;;) {
    Atomics.wait(ctl, GEN, gen);
    gen = Atomics.load(ctl, GEN);
    const op = Atomics.load(ctl, OP);
    if (op === OP_EXIT) return;
    const a = (i) => Atomics.load(ctl, ARGS + i);
    if (op === OP_MATMUL) {
      const [p0, p1] = share(a(5) / 8, index, a(7));
      exports.matmul(a(0), a(1), a(2), a(3), a(4), a(5), a(6), p0, p1);
    } else if (op === OP_SWIGLU) {
      const [from, to] = share(a(2), index, a(3), 4);
      exports.swiglu(a(0), a(1), from, to);
    }
    Atomics.add(ctl, DONE, 1);
    Atomics.notify(ctl, DONE);
  }
}

if (typeof globalThis.WorkerGlobalScope !== 'undefined' && typeof globalThis.addEventListener === 'function') {
  globalThis.addEventListener('message', (e) => start(e.data, (m) => globalThis.postMessage(m)), { once: true });
} else {
  const { parentPort } = await import('node:worker_threads');
  parentPort.once('message', (m) => start(m, (r) => parentPort.postMessage(r)));
}
