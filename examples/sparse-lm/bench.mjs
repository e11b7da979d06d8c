#!/usr/bin/env node
// Prefill time and decode speed of the example at a given context, with the split between
// attention (SparseAttention calls) and the dense parts (everything else), median of --runs
// (and the best run: on a shared machine the closest to an idle one), and the CPU time of
// every thread of the process (process.cpuUsage), which other processes' load inflates less.
//   node examples/sparse-lm/bench.mjs [--contexts 1000,8000] [--decode 64] [--runs 3]
//     [--dense wasm|js] [--kv cache|host] [--path cpu|webgpu] [--threads N] [--dense-threads N] [--chunk N]
// Prompts: the first N bytes of fixtures.json's 8,192-byte validation text. One JSON line
// per context: { context, prefillMs, prefillAttnMs, prefillDenseMs, decodeTokS, decodeMsPerToken,
// decodeAttnMs, decodeDenseMs (per token), prefillMsBest, decodeTokSBest, prefillCpuMs,
// decodeCpuMsPerToken }.
import { loadModel } from './load.mjs';
import { b64bytes, loadFixtures } from './parity.mjs';

const argv = globalThis.Deno ? globalThis.Deno.args : process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i < 0 ? dflt : argv[i + 1];
};
const contexts = arg('--contexts', '1000,8000').split(',').map(Number);
const decode = Number(arg('--decode', 64));
const runs = Number(arg('--runs', 3));
const num = (s) => (s === undefined ? undefined : Number(s));
const model = await loadModel({ path: arg('--path', 'cpu'), dense: arg('--dense', 'wasm'), kv: arg('--kv'), threads: num(arg('--threads')), denseThreads: num(arg('--dense-threads')), chunk: num(arg('--chunk')) });
const text = b64bytes((await loadFixtures()).long.bytes_b64);
const cpuMs = () => {
  const u = globalThis.process?.cpuUsage?.();
  return u ? (u.user + u.system) / 1000 : NaN;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Warm-up: the kernels' first calls compile and grow their memory.
{
  const st = model.createState(600);
  await model.prefill(text.subarray(0, 520), st);
  for (let i = 0; i < 4; i++) await model.step(Uint8Array.of(32), st);
  st.dispose();
}
for (const context of contexts) {
  const prompt = text.subarray(0, context);
  const rows = [];
  for (let r = 0; r < runs; r++) {
    const st = model.createState(Math.min(8192, context + decode));
    model.timing = { attentionMs: 0, denseMs: 0 };
    let c0 = cpuMs();
    let t0 = performance.now();
    let { last } = await model.prefill(prompt, st);
    const prefillMs = performance.now() - t0;
    const prefillCpu = cpuMs() - c0;
    const pre = model.timing;
    model.timing = { attentionMs: 0, denseMs: 0 };
    c0 = cpuMs();
    t0 = performance.now();
    for (let i = 0; i < decode; i++) {
      let b = 0;
      for (let j = 1; j < 256; j++) if (last[j] > last[b]) b = j;
      last = await model.step(Uint8Array.of(b), st);
    }
    const decodeMs = performance.now() - t0;
    const decodeCpu = cpuMs() - c0;
    rows.push({ prefillCpu, decodeCpu, prefillMs, preAttn: pre.attentionMs, preDense: pre.denseMs, decodeMs, decAttn: model.timing.attentionMs, decDense: model.timing.denseMs });
    st.dispose();
  }
  const m = (k) => median(rows.map((x) => x[k]));
  const r1 = (x) => Math.round(x * 10) / 10;
  const r3 = (x) => Math.round(x * 1000) / 1000;
  console.log(JSON.stringify({
    context, decodeTokens: decode, runs, dense: model.dense.name, kv: model.kv, path: model.lastRun ? `${model.lastRun.backend} (${model.lastRun.detail})` : null,
    prefillMs: r1(m('prefillMs')), prefillAttnMs: r1(m('preAttn')), prefillDenseMs: r1(m('preDense')),
    decodeTokS: r1((decode * 1000) / m('decodeMs')), decodeMsPerToken: r3(m('decodeMs') / decode),
    decodeAttnMs: r3(m('decAttn') / decode), decodeDenseMs: r3(m('decDense') / decode),
    prefillCpuMs: r1(m('prefillCpu')), decodeCpuMsPerToken: r3(m('decodeCpu') / decode),
    prefillMsBest: r1(Math.min(...rows.map((x) => x.prefillMs))), decodeTokSBest: r1((decode * 1000) / Math.min(...rows.map((x) => x.decodeMs))),
  }));
}
model.dispose();
