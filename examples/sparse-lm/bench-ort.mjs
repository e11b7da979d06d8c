#!/usr/bin/env node
// The example beside the same weights in onnxruntime (onnx/export.mjs's graph: dense causal
// GroupQueryAttention), at context 8,192: prefill of an 8,000-byte prompt (the first bytes of
// fixtures.json's validation text, 512-byte chunks for all three), then 192 greedy decode
// steps. Each measurement is its own process (a warm-up, then one timed run), run interleaved
// (ours, node, web, then web, node, ours, …) so that the shared machine's load falls on all;
// the table gives medians, every run, and the load averages seen.
//   node examples/sparse-lm/bench-ort.mjs [--runs 3] [--context 8000] [--decode 192] [--threads 2]
//     [--engines ours,node,web] [--kv-buffer shared|copy] [--log FILE] [--json]
// --kv-buffer: onnxruntime-node's K/V handling (onnx/ort-lm.mjs; default shared, its faster
// one); onnxruntime-web always copies. --log: every process's JSON line, appended as it ends.
// Needs onnxruntime-node in bench/peers (node scripts/setup-bench.mjs) for 'node'.
import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { loadOrtNode } from './onnx/ort-node.mjs';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i < 0 ? dflt : argv[i + 1];
};
const context = Number(arg('--context', 8000));
const decode = Number(arg('--decode', 192));
const threads = Number(arg('--threads', 2));
const HERE = new URL('./', import.meta.url);

const argmax = (x) => {
  let b = 0;
  for (let j = 1; j < x.length; j++) if (x[j] > x[b]) b = j;
  return b;
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** One process's measurement: { prefillMs, decodeMs, …, text } of one engine. */
async function child(engine) {
  const { b64bytes, loadFixtures } = await import('./parity.mjs');
  const text = b64bytes((await loadFixtures()).long.bytes_b64);
  let model, label;
  if (engine === 'ours') {
    const { loadModel } = await import('./load.mjs');
    model = await loadModel({ path: 'cpu', threads });
  } else {
    const config = JSON.parse(await readFile(new URL('model.json', HERE), 'utf8'));
    const { readWeights } = await import('./weights.mjs');
    const { tensors } = await readWeights(await readFile(new URL(config.weights.file, HERE)), config);
    const { createOrtLM } = await import('./onnx/ort-lm.mjs');
    let ort;
    if (engine === 'node') {
      ort = loadOrtNode();
      if (!ort) throw new Error('onnxruntime-node is not installed: node scripts/setup-bench.mjs');
    } else {
      ort = await import('onnxruntime-web');
      ort.env.wasm.numThreads = threads;
      ort.env.wasm.simd = true;
    }
    // A child started without --kv-buffer copies (the parent always passes it).
    const kvBuffer = engine === 'node' ? arg('--kv-buffer', 'copy') : 'copy';
    model = await createOrtLM(ort, config, tensors, { runtime: engine, threads, kvBuffer });
  }
  // Warm-up: first calls compile kernels, start workers and grow memory.
  {
    const st = model.createState(600);
    await model.prefill(text.subarray(0, 520), st);
    for (let i = 0; i < 4; i++) await model.step(Uint8Array.of(32), st);
    st.dispose();
  }
  const st = model.createState(context + decode);
  if (model.timing) model.timing = { attentionMs: 0, denseMs: 0 };
  let c0 = cpuMs();
  let t0 = performance.now();
  let { last } = await model.prefill(text.subarray(0, context), st);
  const prefillMs = performance.now() - t0;
  const prefillCpuMs = cpuMs() - c0;
  const pre = model.timing ? { ...model.timing } : null;
  if (model.timing) model.timing = { attentionMs: 0, denseMs: 0 };
  const out = [];
  c0 = cpuMs();
  t0 = performance.now();
  for (let i = 0; i < decode; i++) {
    const b = argmax(last);
    out.push(b);
    last = await model.step(Uint8Array.of(b), st);
  }
  const decodeMs = performance.now() - t0;
  const decodeCpuMs = cpuMs() - c0;
  label = model.name ?? `this example: attention ${model.lastRun?.backend} (${model.lastRun?.detail}), dense ${model.dense.name}, kv ${model.kv}`;
  const r = {
    engine, label, prefillMs, prefillCpuMs, decodeMs, decodeCpuMs,
    prefillAttnMs: pre?.attentionMs, prefillDenseMs: pre?.denseMs,
    decodeAttnMs: model.timing?.attentionMs, decodeDenseMs: model.timing?.denseMs,
    bytes: out,
  };
  st.dispose();
  await model.dispose();
  return r;
}

if (argv[0] === '--child') {
  const r = await child(argv[1]);
  console.log(JSON.stringify(r));
  process.exit(0);
}

const runs = Number(arg('--runs', 3));
const engines = arg('--engines', 'ours,node,web').split(',');
const kvBuffer = arg('--kv-buffer', 'shared');
const log = arg('--log');
const NAMES = { ours: 'this example (sparse, wasm SIMD)', node: 'onnxruntime-node (native, dense GQA)', web: 'onnxruntime-web (wasm, dense GQA)' };
const results = Object.fromEntries(engines.map((e) => [e, []]));
const loads = [];
const self = fileURLToPath(import.meta.url);
for (let r = 0; r < runs; r++) {
  const order = r % 2 ? [...engines].reverse() : engines;
  for (const e of order) {
    const load = loadavg()[0];
    loads.push(load);
    const p = spawnSync(process.execPath, [self, '--child', e, '--context', String(context), '--decode', String(decode), '--threads', String(threads), '--kv-buffer', kvBuffer], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (p.status !== 0) throw new Error(`bench-ort: ${e} failed (${p.status}): ${p.stderr}`);
    const res = JSON.parse(p.stdout.trim().split('\n').pop());
    res.load = load;
    if (log) appendFileSync(log, `${JSON.stringify({ run: r + 1, ...res })}\n`);
    results[e].push(res);
    process.stderr.write(`run ${r + 1} ${e}: prefill ${res.prefillMs.toFixed(0)} ms, decode ${((decode * 1000) / res.decodeMs).toFixed(1)} bytes/s (load ${load.toFixed(2)})\n`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const rows = engines.map((e) => {
  const rs = results[e];
  const m = (k) => median(rs.map((x) => x[k]));
  return {
    engine: e, name: NAMES[e], label: rs[0].label,
    prefillMs: m('prefillMs'), prefillRuns: rs.map((x) => x.prefillMs), prefillCpuMs: m('prefillCpuMs'),
    decodeBytesPerS: (decode * 1000) / m('decodeMs'), decodeRuns: rs.map((x) => (decode * 1000) / x.decodeMs), decodeCpuMsPerByte: m('decodeCpuMs') / decode,
    prefillAttnMs: rs[0].prefillAttnMs === undefined ? null : m('prefillAttnMs'), prefillDenseMs: rs[0].prefillDenseMs === undefined ? null : m('prefillDenseMs'),
    decodeAttnMsPerByte: rs[0].decodeAttnMs === undefined ? null : m('decodeAttnMs') / decode, decodeDenseMsPerByte: rs[0].decodeDenseMs === undefined ? null : m('decodeDenseMs') / decode,
    bytes: rs[0].bytes, sameBytesEveryRun: rs.every((x) => x.bytes.join() === rs[0].bytes.join()),
  };
});
const loadRange = `${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}`;
if (argv.includes('--json')) {
  console.log(JSON.stringify({ context, decode, threads, runs, node: process.version, load: loadRange, rows }));
} else {
  console.log(`context ${context} + ${decode} decoded bytes, ${threads} threads, ${runs} runs interleaved, ${process.version}, load average (1 min) ${loadRange}`);
  console.log('');
  console.log('| | prefill 8,000 bytes: median (runs) | — CPU time | decode 192 bytes: median (runs) | — CPU time per byte |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.name} | **${fmt(r.prefillMs)} ms** (${r.prefillRuns.map((x) => fmt(x)).join(' / ')}) | ${fmt(r.prefillCpuMs)} ms | **${fmt(r.decodeBytesPerS, 1)} bytes/s** (${r.decodeRuns.map((x) => fmt(x, 1)).join(' / ')}) | ${fmt(r.decodeCpuMsPerByte, 2)} ms |`);
  }
  const ours = rows.find((r) => r.engine === 'ours');
  if (ours) {
    console.log('');
    console.log(`this example's split: prefill attention ${fmt(ours.prefillAttnMs)} ms / dense ${fmt(ours.prefillDenseMs)} ms; decode per byte attention ${fmt(ours.decodeAttnMsPerByte, 2)} ms / dense ${fmt(ours.decodeDenseMsPerByte, 2)} ms (medians)`);
  }
  const n = rows.find((r) => r.engine === 'node'), w = rows.find((r) => r.engine === 'web');
  if (n && w) console.log(`onnxruntime-node and -web greedy bytes ${n.bytes.join() === w.bytes.join() ? 'identical' : 'DIFFER'} (${n.bytes.length} bytes)`);
  for (const r of rows) console.log(`${r.engine}: ${r.label}${r.sameBytesEveryRun ? '' : ' (greedy bytes differed between runs)'}`);
}
