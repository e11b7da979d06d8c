// `npm run bench`: every CPU number of the report in one run on this machine — the wasm
// SIMD peak (bench/simd-peak.mjs), the peers on W1–W3 (bench/peers.mjs), the nCtx scaling
// (bench/scaling.mjs), decode / GQA / packed sequences (bench/decode.mjs) — written to bench/results/<date>-<machine>.json, then bench/REPORT.md
// and its SVG charts are regenerated (bench/report.mjs).
//   node bench/run.mjs [--quick] [--peers ours,ort-node] [--no-scaling] [--no-decode] [--machine name] [--wait-idle 120]
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { spawnSync, execSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs, machineInfo } from './lib.mjs';
import { runPeers } from './peers.mjs';


const args = parseArgs();
const started = Date.now();

// The machine may be shared: wait (bounded) for a quiet 1-minute load average, and record it.
const waitS = Number(args['wait-idle'] ?? 120);
while (os.loadavg()[0] > 0.7 && Date.now() - started < waitS * 1000) {
  console.error(`waiting for a quiet machine: load ${os.loadavg()[0].toFixed(2)}`);
  await new Promise((r) => setTimeout(r, 10000));
}
const loadAtStart = os.loadavg();

function nodeJson(argv) {
  const p = spawnSync(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 26 });
  const line = p.stdout.split('\n').filter((l) => l.startsWith('{')).at(-1);
  return line ? JSON.parse(line) : { error: `node ${argv.join(' ')} exited with ${p.status ?? p.signal}` };
}
// onnxruntime-node lives in the nested project bench/peers (scripts/setup-bench.mjs).
const version = (pkg) => {
  for (const dir of ['node_modules', 'bench/peers/node_modules']) {
    try { return JSON.parse(readFileSync(`${dir}/${pkg}/package.json`, 'utf8')).version; } catch { /* next */ }
  }
  return null;
};
const git = (cmd) => { try { return execSync(`git ${cmd}`, { encoding: 'utf8' }).trim(); } catch { return null; } };

console.error('wasm SIMD peak, one core:');
const peak = nodeJson(['bench/simd-peak.mjs', '--json']);
if (!peak.relaxedFma && !peak.error) {
  const flagged = nodeJson(['--experimental-wasm-relaxed-simd', 'bench/simd-peak.mjs', '--json']);
  peak.relaxedFma = flagged.relaxedFma ? { ...flagged.relaxedFma, flag: '--experimental-wasm-relaxed-simd' } : null;
}
console.error(`  mul+add ${peak.mulAdd?.gflops.toFixed(1)} GFLOP/s, relaxed FMA ${peak.relaxedFma?.gflops.toFixed(1) ?? 'n/a'} GFLOP/s`);

const workloads = args.quick ? ['W1', 'W3'] : null;
const peers = runPeers({ peers: typeof args.peers === 'string' ? args.peers.split(',') : null, workloads });
let scaling = null;
if (!args['no-scaling']) {
  console.error('scaling:');
  scaling = nodeJson(['bench/scaling.mjs', '--json', '--max', args.quick ? '4096' : '16384']);
}

// Generation (issue 17): decode steps against a KV cache with the GroupQueryAttention peers,
// GQA prefill against repeated K/V, packed sequences (bench/decode.mjs).
let decode = null;
if (!args['no-decode']) {
  console.error('decode:');
  decode = nodeJson(['bench/decode.mjs', '--json', ...(args.quick ? ['--lens', '4096', '--modes', 'all'] : ['--lens', '4096,8192,32768,131072', '--prefill', '4096', '--packed'])]);
}

const machine = machineInfo();
const slug = String(args.machine ?? `${machine.cpu.replace(/\(R\)|\(TM\)|CPU|Processor|@.*$/g, '').trim()}-${machine.cores}c`)
  .toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
const date = new Date().toISOString().slice(0, 10);
const result = {
  kind: 'cpu', date: new Date().toISOString(), machine: { ...machine, slug },
  library: { commit: git('rev-parse --short HEAD'), dirty: Boolean(git('status --porcelain -- src assembly')), version: JSON.parse(readFileSync('package.json', 'utf8')).version },
  peerVersions: Object.fromEntries(['onnxruntime-web', 'onnxruntime-node', '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm', 'protobufjs'].map((p) => [p, version(p)])),
  load: { start: loadAtStart, end: os.loadavg() }, quick: Boolean(args.quick),
  command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
  durationS: 0, simdPeak: peak, peers, scaling, decode,
};
result.durationS = Math.round((Date.now() - started) / 1000);
mkdirSync('bench/results', { recursive: true });
const out = `bench/results/${date}-${slug}${args.quick ? '-quick' : ''}.json`;
writeFileSync(out, JSON.stringify(result, null, 1) + '\n');
console.error(`wrote ${out} (${result.durationS} s)`);
(await import('./report.mjs')).writeReport();
process.exit(0);
