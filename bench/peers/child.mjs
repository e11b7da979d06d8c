// One peer in its own process (thread pools and wasm instances are per process):
//   node bench/peers/child.mjs --peer ort-web --threads 2 --refdir DIR [--workloads W1,W3]
// For every workload case and every configuration of the peer: build its inputs and the
// mask bias (untimed), run once and check the output against the float64 reference written
// by bench/peers.mjs (a failed check means no time is recorded), then time it. One JSON
// line per case on stdout; progress on stderr.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { WORKLOADS, parseArgs, workloadInputs, maskBias, check, timeIt, runsFor, usefulFlops, TOL_OURS, TOL_PEERS } from '../lib.mjs';

const args = parseArgs();
const mod = await import(`./${args.peer}.mjs`);
const configs = mod.configure ? mod.configure(Number(args.threads ?? 1)) : mod.configs;
const only = args.workloads ? String(args.workloads).split(',') : null;

function loadRef(w, mode) {
  const meta = JSON.parse(readFileSync(`${args.refdir}/${w.id}-${mode}.json`, 'utf8'));
  const buf = readFileSync(`${args.refdir}/${w.id}-${mode}.bin`);
  return { ...meta, data: new Float64Array(buf.buffer, buf.byteOffset, buf.byteLength / 8) };
}

for (const w of WORKLOADS) {
  if (only && !only.includes(w.id)) continue;
  const inputs = workloadInputs(w);
  for (const [mode, L] of w.cases) {
    const bias = maskBias(w.nCtx, mode, L);
    const ref = loadRef(w, mode);
    const flops = usefulFlops(w, mode, L);
    for (const config of configs) {
      const row = { peer: mod.name, label: config.label, threads: config.threads, config, workload: w.id, mode, localAttnCtx: L ?? null, usefulGflop: flops / 1e9 };
      let s;
      try {
        s = await mod.setup(w, mode, L, inputs, bias, config);
        const t0 = performance.now();
        const out = await s.run();
        const firstMs = performance.now() - t0;
        row.check = check(out, ref, inputs.shape, mod.name === 'sparse-attention' ? TOL_OURS : TOL_PEERS);
        row.info = s.info;
        if (row.check.ok) {
          // A call over 20 s: the checked call (JIT warm from earlier cases) is the one sample.
          const t = firstMs > 20000 ? { medianMs: firstMs, minMs: firstMs, runs: 1 } : await timeIt(s.run, runsFor(firstMs));
          Object.assign(row, t, { usefulGflops: flops / (t.medianMs * 1e6), load1: +os.loadavg()[0].toFixed(2) });
        }
      } catch (e) {
        row.error = String(e?.stack ?? e).slice(0, 600);
      } finally {
        await s?.dispose?.();
      }
      process.stderr.write(`  ${w.id} ${mode.padEnd(8)} ${config.label.padEnd(36)} ${row.error ? 'ERROR ' + row.error.split('\n')[0]
        : row.check.ok ? `${row.medianMs.toFixed(2).padStart(10)} ms ${row.usefulGflops.toFixed(2).padStart(7)} GFLOP/s (${row.runs} runs, max err ${row.check.maxErr.toExponential(1)})`
        : `CHECK FAILED max err ${row.check.maxErr} at ${JSON.stringify(row.check.first)}`}\n`);
      process.stdout.write(JSON.stringify(row) + '\n');
    }
  }
}
process.exit(0); // worker pools of some peers would keep the process alive
