// Overhead of the score modifiers on the CPU kernel (issue 18: each ≤ 10% on W2 `local`
// against the same call without it): W2 (batch 1, nCtx 4096, nEmbd 512, 8 heads, `local`
// L = 256 causal; --modes all,strided for W2's other cases) with and without each modifier
// (scale; softcap; ALiBi; sinks; the lse output; all of them), measured A B B A (without,
// with, with, without) --rounds times, each measurement the median of --calls calls, and
// reported as medians and their ratio with the load average. The bench/gpu-mods.mjs twin
// measures the GPU kernel.
//   node bench/mods.mjs [--threads 2] [--modes local] [--mods scale,softcap,alibi,sinks,lse,all]
//                       [--rounds 5] [--calls 5] [--variant relaxed|simd|scalar] [--out file.json]
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { SparseAttention } from '../dist/index.js';
import { WORKLOADS, machineInfo, median, parseArgs, workloadInputs } from './lib.mjs';

const args = parseArgs();
const threads = Number(args.threads ?? 2);
const rounds = Number(args.rounds ?? 5);
const calls = Number(args.calls ?? 5);
const W2 = WORKLOADS.find((w) => w.id === 'W2');
const MODES = String(args.modes ?? 'local').split(',');
const sinks = Float32Array.from({ length: W2.heads }, (_, h) => (h % 5) - 2);
const SETS = {
  scale: { mods: { scale: 0.1 } },
  softcap: { mods: { softcap: 30 } },
  alibi: { mods: { alibi: true } },
  sinks: { mods: { sinks } },
  lse: { mods: {}, lse: true },
  all: { mods: { scale: 0.1, softcap: 30, alibi: true, sinks }, lse: true },
};
const NAMES = String(args.mods ?? Object.keys(SETS).join(',')).split(',');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const { shape, q, k, v } = workloadInputs(W2);
const out = new Float32Array(q.data.length);

const result = { machine: machineInfo(), workload: 'W2', threads, rounds, calls, loadStart: loadavg(), cases: [] };
console.error(`load average at start: ${load()}`);
for (const mode of MODES) {
  const L = W2.cases.find(([m]) => m === mode)[1];
  const make = (mods) => new SparseAttention(W2.heads, mode, L, 32, { backend: 'wasm', threads, wasmVariant: args.variant, ...mods });
  const base = make({});
  const time = async (attn, lse) => {
    const ts = [];
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      await attn.forward(q, k, v, { out, lse });
      ts.push(performance.now() - t0);
    }
    return median(ts);
  };
  // warm-up: tier-up, workers, tables (≥ 1 s)
  const w0 = performance.now();
  while (performance.now() - w0 < 1000) await time(base);
  for (const name of NAMES) {
    const set = SETS[name];
    const attn = make(set.mods);
    const lse = set.lse ? new Float32Array(W2.heads * W2.nCtx) : undefined;
    await time(attn, lse);
    const without = [];
    const withMods = [];
    for (let r = 0; r < rounds; r++) {
      without.push(await time(base));
      withMods.push(await time(attn, lse));
      withMods.push(await time(attn, lse));
      without.push(await time(base));
    }
    const a = median(without);
    const b = median(withMods);
    result.cases.push({ mode, mods: name, withoutMs: +a.toFixed(3), withMs: +b.toFixed(3), ratio: +(b / a).toFixed(4), load: loadavg(), detail: attn.lastRun.detail });
    console.log(`W2 ${mode} ${name.padEnd(8)} without ${a.toFixed(2)} ms  with ${b.toFixed(2)} ms  ratio ${(b / a).toFixed(3)}  (load ${load()}; ${attn.lastRun.detail})`);
    attn.dispose();
  }
  base.dispose();
}
if (args.out) writeFileSync(String(args.out), JSON.stringify(result, null, 2) + '\n');
