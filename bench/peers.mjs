// Peers on workloads W1–W3, same inputs and masks for all: this library (1, 2 threads),
// plain-JS dense, onnxruntime-web wasm (1, 2 threads), onnxruntime-node native (1, 2 threads,
// ± set_denormal_as_zero), tfjs-backend-wasm (XNNPACK). Each peer runs in its own process
// (bench/peers/child.mjs); this script writes the float64 references they are checked against.
//   node bench/peers.mjs [--peers ours,ort-node,...] [--workloads W1,W3] [--out file.json]
// (ort-node: onnxruntime-node is installed into bench/peers by `node scripts/setup-bench.mjs`,
// which `npm run bench` runs first.)
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { WORKLOADS, parseArgs, workloadInputs, referenceFor, machineInfo } from './lib.mjs';

/** Process order: cheap first; each entry is one child process. */
export const PEER_RUNS = [
  { peer: 'ours' }, { peer: 'ort-node' }, { peer: 'ort-web', threads: 2 }, { peer: 'ort-web', threads: 1 },
  { peer: 'tfjs-wasm' }, { peer: 'plain-js' },
];

export function runPeers({ peers = null, workloads = null } = {}) {
  const refdir = mkdtempSync(path.join(os.tmpdir(), 'sparse-attn-ref-'));
  const refs = [];
  try {
    for (const w of WORKLOADS) {
      if (workloads && !workloads.includes(w.id)) continue;
      const inputs = workloadInputs(w);
      for (const [mode, L] of w.cases) {
        const t0 = performance.now();
        const ref = referenceFor(w, mode, L, inputs);
        writeFileSync(`${refdir}/${w.id}-${mode}.json`, JSON.stringify({ kind: ref.kind, rows: ref.rows }));
        writeFileSync(`${refdir}/${w.id}-${mode}.bin`, new Uint8Array(ref.data.buffer));
        refs.push({ workload: w.id, mode, kind: ref.kind, rows: ref.rows?.length ?? w.nCtx, ms: Math.round(performance.now() - t0) });
        console.error(`reference ${w.id} ${mode}: ${ref.kind === 'full' ? 'attentionReference, all rows' : `${ref.rows.length} rows per batch×head`} (${refs.at(-1).ms} ms)`);
      }
    }
    const rows = [];
    for (const r of PEER_RUNS) {
      if (peers && !peers.includes(r.peer)) continue;
      const argv = ['bench/peers/child.mjs', '--peer', r.peer, '--refdir', refdir];
      if (r.threads) argv.push('--threads', String(r.threads));
      if (workloads) argv.push('--workloads', workloads.join(','));
      console.error(`${r.peer}${r.threads ? ` (${r.threads} threads)` : ''}:`);
      const p = spawnSync(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 26 });
      for (const line of p.stdout.split('\n')) if (line.startsWith('{')) rows.push(JSON.parse(line));
      if (p.status !== 0) rows.push({ peer: r.peer, threads: r.threads ?? null, error: `child exited with ${p.status ?? p.signal}` });
    }
    return { refs, rows };
  } finally {
    rmSync(refdir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = parseArgs();
  const res = runPeers({ peers: args.peers?.split(','), workloads: args.workloads?.split(',') });
  const out = { date: new Date().toISOString(), machine: machineInfo(), peers: res };
  if (args.out) writeFileSync(args.out, JSON.stringify(out, null, 1) + '\n');
  else console.log(JSON.stringify(out, null, 1));
}
