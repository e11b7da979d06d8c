// Overhead of the score modifiers on the GPU kernel (issue 18: each ≤ 10% on `local` 16K): the
// same forwardGPU call with and without each modifier set (scale; softcap; ALiBi; sinks; all
// four), batch 1, 16 heads, head dim 64, `local` L = 512 causal (and --modes all,strided),
// kernel time from timestamp queries over one pass of --repeat dispatches (adapters without
// timestamps: the wall time of one call, a single dispatch), measured A B B A
// (without, with, with, without) --rounds times and reported as medians and their ratio.
// Plain Node on dist/, so it runs on the GPU machine:
//   node bench/gpu-mods.mjs [--sizes 16384] [--modes local] [--mods scale,softcap,alibi,sinks,all]
//                           [--repeat 20] [--rounds 5] [--dist dir] [--out file.json]
// (lse is an output of forward() only; its store runs in the 'all' pipeline's epilogue code
// path, which this measures minus one f32 store a row.)
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gpuBufferOf, median, parseArgs, randomTensor, GPU_USAGE, machineInfo } from './lib.mjs';

const args = parseArgs();
const { SparseAttention } = await import(args.dist ? pathToFileURL(`${args.dist}/index.js`).href : '../dist/index.js');
const SIZES = String(args.sizes ?? '16384').split(',').map(Number);
const MODES = String(args.modes ?? 'local').split(',');
const HEADS = 16;
const HEAD_DIM = 64;
const REPEAT = Number(args.repeat ?? 20);
const ROUNDS = Number(args.rounds ?? 5);
const sinks = Float32Array.from({ length: HEADS }, (_, h) => (h % 5) - 2);
const SETS = {
  scale: { scale: 0.1 },
  softcap: { softcap: 30 },
  alibi: { alibi: true },
  sinks: { sinks },
  all: { scale: 0.1, softcap: 30, alibi: true, sinks },
};
const MODS = String(args.mods ?? Object.keys(SETS).join(',')).split(',');
const L = { all: undefined, local: 512, strided: 128 };
const { STORAGE, COPY_SRC, COPY_DST } = GPU_USAGE;
const log = (...a) => console.error(...a);

/** Kernel ms of one pass (timestamps); where the adapter has none, the wall time of the call to its completion. */
async function kernelMs(attn, device, bufs, shape, out) {
  const t0 = performance.now();
  await attn.forwardGPU(bufs.q, bufs.k, bufs.v, shape, { out });
  await device.queue.onSubmittedWorkDone();
  return attn.lastRun.gpuMs ?? performance.now() - t0;
}

const result = { machine: machineInfo(), repeat: REPEAT, rounds: ROUNDS, cases: [] };
for (const mode of MODES) {
  for (const n of SIZES) {
    const shape = [1, n, HEADS * HEAD_DIM];
    const make = (mods) => new SparseAttention(HEADS, mode, L[mode], 64, { backend: 'webgpu', causal: true, ...mods, webgpu: { timestamps: true, repeat: REPEAT } });
    const base = make({});
    const device = await base.gpuDevice();
    const bufs = { q: gpuBufferOf(device, randomTensor(shape, 1).data), k: gpuBufferOf(device, randomTensor(shape, 2).data), v: gpuBufferOf(device, randomTensor(shape, 3).data) };
    const out = device.createBuffer({ size: n * HEADS * HEAD_DIM * 4, usage: STORAGE | COPY_SRC | COPY_DST });
    // warm-up: pipelines, and the SM clock (at least 300 ms busy)
    const t0 = performance.now();
    while (performance.now() - t0 < 300) await kernelMs(base, device, bufs, shape, out);
    for (const name of MODS) {
      const attn = make(SETS[name]);
      await kernelMs(attn, device, bufs, shape, out);
      const without = [];
      const withMods = [];
      for (let r = 0; r < ROUNDS; r++) {
        without.push(await kernelMs(base, device, bufs, shape, out));
        withMods.push(await kernelMs(attn, device, bufs, shape, out));
        withMods.push(await kernelMs(attn, device, bufs, shape, out));
        without.push(await kernelMs(base, device, bufs, shape, out));
      }
      const a = median(without);
      const b = median(withMods);
      const row = { mode, nCtx: n, mods: name, withoutMs: a, withMs: b, ratio: b / a };
      result.cases.push(row);
      log(`${mode} ${n} ${name.padEnd(8)} without ${a.toFixed(3)} ms  with ${b.toFixed(3)} ms  ratio ${(b / a).toFixed(3)}`);
      attn.dispose();
    }
    out.destroy();
    for (const b of Object.values(bufs)) b.destroy();
    base.dispose();
  }
}
if (args.out) {
  mkdirSync(dirname(String(args.out)), { recursive: true });
  writeFileSync(String(args.out), JSON.stringify(result, null, 2));
}
