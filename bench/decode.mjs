// Generation on the CPU path (issue 17): decode steps against a KV cache and GQA prefill.
// Decode: batch 1, 32 query heads / 8 K/V heads, head dim 128; one new token per step against
// a cache of `len` tokens. The cache is filled without computing attention (KvCache's
// internal append: a prefill of 128K tokens would take minutes on 2 cores and is not what is
// measured), then each timed step appends one token and attends it; the cache is truncated
// back after each step so that every step sees the same length. Reports ms per step
// (median), the bytes its append writes into the cache (counted in the append path), the K/V
// bytes the step's visited blocks read, and GB/s. Peers in the same run, on
// the same tensors, their output checked against the library's reference first:
// onnxruntime-node and onnxruntime-web with com.microsoft.GroupQueryAttention (past_key /
// past_value of `len` tokens plus the new one; local_window_size for 'local').
// GQA prefill (--prefill N): nCtx N, 32/8 heads, d128, 'all', against the same call with K and
// V repeated to 32 heads (kvHeads 32).
//   node bench/decode.mjs [--threads 2] [--lens 4096,8192,32768,131072] [--modes all,local]
//     (--modes also takes fixed (L 4096), longformer, bigbird: their defaults, blocksize 32; no peers for those)
//     [--peers ort-node,ort-web] [--peer-max-len 32768] [--prefill 4096] [--packed] [--json] [--out file.json]
// Packed (--packed): lengths {4096, 15 × 256}, 'local' 256, 8 heads d64, one call with
// seqLengths against the sum of separate calls and the padded batch (16 × 4096, keyLengths).
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { SparseAttention, attentionReference } from '../dist/index.js';
import { machineInfo, parseArgs, timeIt } from './lib.mjs';

const args = parseArgs();
const threads = Number(args.threads ?? 2);
const lens = String(args.lens ?? '4096,8192,32768,131072').split(',').map(Number);
const modes = String(args.modes ?? 'all,local').split(',').filter(Boolean);
const peerNames = args.peers === undefined ? ['ort-node', 'ort-web'] : String(args.peers).split(',').filter(Boolean);
const peerMaxLen = Number(args['peer-max-len'] ?? 32768);
const prefill = args.prefill === undefined ? 0 : Number(args.prefill);
const [heads, kvHeads, d, L] = [32, 8, 128, 4096];
const fill = (n, w, s) => Float32Array.from({ length: n * w }, (_, i) => Math.sin(i * 0.013 + s) * 0.5);
const load = () => loadavg()[0].toFixed(2);

/** Largest |a - r| / (atol + rtol·|r|) over the outputs: <= 1 passes. */
function errorRatio(a, r, atol = 1e-5, rtol = 1e-4) {
  let worst = 0;
  for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(a[i] - r[i]) / (atol + rtol * Math.abs(r[i])));
  return worst;
}

async function peerSessions() {
  const out = [];
  for (const name of peerNames) {
    if (name === 'ort-node') {
      try {
        // installed in the nested project bench/peers
        const at = createRequire(new URL('./peers/package.json', import.meta.url)).resolve('onnxruntime-node');
        const mod = await import(pathToFileURL(at).href);
        const ort = mod.default ?? mod;
        out.push({ name, label: `onnxruntime-node ${ort.env.versions?.node ?? ''} GroupQueryAttention ${threads}t`, ort, options: { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', extra: { session: { set_denormal_as_zero: '1', 'intra_op.allow_spinning': '0' } } } });
      } catch (e) {
        console.error(`ort-node unavailable (node scripts/setup-bench.mjs installs it): ${e.message}`);
      }
    } else if (name === 'ort-web') {
      const ort = await import('onnxruntime-web');
      ort.env.wasm.numThreads = threads;
      out.push({ name, label: `onnxruntime-web ${ort.env.versions?.web ?? ''} wasm GroupQueryAttention ${threads}t`, ort, options: { executionProviders: ['wasm'], graphOptimizationLevel: 'all' } });
    }
  }
  return out;
}

const rows = [];
// --json (bench/run.mjs): rows to stderr as they come, the whole result as one stdout line at the end.
const report = (row) => (args.json ? console.error : console.log)(JSON.stringify(row));
const peers = peerNames.length ? await peerSessions() : [];
const { gqaDecodeModel, gqaFeeds } = peers.length ? await import('./peers/gqa-graph.mjs') : {};
for (const mode of modes) {
  for (const len of lens) {
    if (mode === 'all' && len > 32768) continue; // quadratic in what a step reads: 'all' shown to 32K
    const attn = new SparseAttention(heads, mode, mode === 'local' || mode === 'fixed' ? L : undefined, 32, { kvHeads, backend: 'wasm', threads });
    const cache = attn.createCache({ batch: 1, capacity: len + 1 });
    const kPast = fill(len, kvHeads * d, 0.3);
    const vPast = fill(len, kvHeads * d, 1.7);
    const chunk = 4096;
    for (let t = 0; t < len; t += chunk) {
      const n = Math.min(chunk, len - t);
      const s = t * kvHeads * d, e = (t + n) * kvHeads * d;
      const { base } = cache.begin(kPast.subarray(s, e), vPast.subarray(s, e), n, d);
      cache.end(base, true);
    }
    const qData = fill(1, heads * d, 7);
    const kNew = fill(1, kvHeads * d, 8);
    const vNew = fill(1, kvHeads * d, 9);
    const q = { data: qData, shape: [1, 1, heads * d] };
    const kv = (data) => ({ data, shape: [1, 1, kvHeads * d] });
    const ours = async () => {
      const out = await attn.forward(q, kv(kNew), kv(vNew), { cache });
      cache.truncate(len);
      return out.data;
    };
    // The reference: the new query against every cached key and the new one (bottom-right aligned).
    let ref = null;
    if (len <= peerMaxLen) {
      const kAll = new Float32Array((len + 1) * kvHeads * d);
      kAll.set(kPast);
      kAll.set(kNew, len * kvHeads * d);
      const vAll = new Float32Array((len + 1) * kvHeads * d);
      vAll.set(vPast);
      vAll.set(vNew, len * kvHeads * d);
      ref = attentionReference(q, { data: kAll, shape: [1, len + 1, kvHeads * d] }, { data: vAll, shape: [1, len + 1, kvHeads * d] }, heads, mode, mode === 'local' || mode === 'fixed' ? L : undefined, 32, { kvHeads }).data;
    }
    const check = ref ? errorRatio(await ours(), ref) : null;
    if (check !== null && !(check <= 1)) throw new Error(`ours: ${mode} cache ${len}: off the reference (error ratio ${check})`);
    // Bytes one step's append writes into the cache (counted where they are written).
    const w0 = cache.bytesWritten;
    await attn.forward(q, kv(kNew), kv(vNew), { cache });
    const appendBytes = cache.bytesWritten - w0;
    cache.truncate(len);
    const r = await timeIt(ours, { warmupMs: 300, minRuns: 9, minMs: 1000 });
    const plan = attn.plan([1, 1, heads * d], { nK: len + 1 });
    // K and V of the visited keys, once per K/V head (query heads of a group read the same rows)
    // (block-pattern modes: the keys of the blocks the step visits, averaged over the heads)
    const blockKeys = Math.round(plan.visitedFlops / (4 * d * 32) / heads);
    const keys = Math.min(len + 1, mode === 'local' ? L : mode === 'all' ? len + 1 : blockKeys);
    const bytes = 2 * kvHeads * keys * d * 4;
    const row = {
      case: 'decode', mode, cacheTokens: len, heads, kvHeads, headDim: d, localAttnCtx: mode === 'local' || mode === 'fixed' ? L : null, threads,
      medianMs: +r.medianMs.toFixed(3), minMs: +r.minMs.toFixed(3), runs: r.runs, errorRatio: check,
      appendBytes, kvBytesRead: bytes, gbps: +(bytes / (r.medianMs * 1e6)).toFixed(2), allowedPairs: plan.allowedPairs, path: attn.lastRun.detail,
      load: load(), peers: [],
    };
    cache.dispose();
    attn.dispose();
    // the peers' GroupQueryAttention has dense and sliding-window causal masks only
    for (const p of len <= peerMaxLen && (mode === 'all' || mode === 'local') ? peers : []) {
      const shape = { batch: 1, heads, kvHeads, d, past: len };
      try {
        const session = await p.ort.InferenceSession.create(gqaDecodeModel({ ...shape, localWindow: mode === 'local' ? L : -1 }), p.options);
        const feeds = gqaFeeds(p.ort, shape, qData, kNew, vNew, kPast, vPast);
        const run = async () => (await session.run(feeds)).out.data;
        const err = errorRatio(await run(), ref);
        const t = err <= 1 ? await timeIt(run, { warmupMs: 300, minRuns: 9, minMs: 1000 }) : null;
        row.peers.push({ peer: p.label, medianMs: t ? +t.medianMs.toFixed(3) : null, errorRatio: err, oursFaster: t ? +(t.medianMs / r.medianMs).toFixed(2) : null, load: load() });
        await session.release();
      } catch (e) {
        row.peers.push({ peer: p.label, error: String(e.message ?? e).slice(0, 300) });
      }
    }
    rows.push(row);
    report(row);
  }
}

if (prefill > 0) {
  // GQA prefill: 8 K/V heads vs the same K/V repeated to 32 heads (each query head its own).
  const n = prefill;
  const q = { data: fill(n, heads * d, 1), shape: [1, n, heads * d] };
  const k8 = fill(n, kvHeads * d, 2), v8 = fill(n, kvHeads * d, 3);
  const repeat = (x) => {
    const out = new Float32Array(n * heads * d);
    const G = heads / kvHeads;
    for (let t = 0; t < n; t++) for (let h = 0; h < heads; h++) out.set(x.subarray((t * kvHeads + Math.floor(h / G)) * d, (t * kvHeads + Math.floor(h / G) + 1) * d), (t * heads + h) * d);
    return out;
  };
  const k32 = repeat(k8), v32 = repeat(v8);
  const gqa = new SparseAttention(heads, 'all', undefined, 32, { kvHeads, backend: 'wasm', threads });
  const rep = new SparseAttention(heads, 'all', undefined, 32, { backend: 'wasm', threads });
  const runG = async () => (await gqa.forward(q, { data: k8, shape: [1, n, kvHeads * d] }, { data: v8, shape: [1, n, kvHeads * d] })).data;
  const runR = async () => (await rep.forward(q, { data: k32, shape: [1, n, heads * d] }, { data: v32, shape: [1, n, heads * d] })).data;
  const agree = errorRatio(await runG(), await runR());
  if (!(agree <= 1)) throw new Error(`GQA prefill: kvHeads 8 and repeated K/V disagree (error ratio ${agree})`);
  // Interleaved A B B A: the machine's load drifts.
  const times = { gqa: [], rep: [] };
  for (const which of ['gqa', 'rep', 'rep', 'gqa']) {
    const t = await timeIt(which === 'gqa' ? runG : runR, { warmup: 0, minRuns: 2, minMs: 0 });
    times[which].push(t.medianMs);
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const row = {
    case: 'gqa-prefill', mode: 'all', nCtx: n, heads, kvHeads, headDim: d, threads,
    gqaMs: +mean(times.gqa).toFixed(1), repeatedMs: +mean(times.rep).toFixed(1), ratio: +(mean(times.gqa) / mean(times.rep)).toFixed(3),
    runs: times, agreeErrorRatio: agree, path: gqa.lastRun.detail, load: load(),
  };
  rows.push(row);
  report(row);
  gqa.dispose();
  rep.dispose();
}
if (args.packed) {
  // Packed variable-length batch: lengths {4096, 15 × 256}, 'local' 256, 8 heads d64: one call
  // with seqLengths vs the sum of separate calls vs the padded batch (16 × 4096, keyLengths).
  const [ph, pd, pL] = [8, 64, 256];
  const lensP = [4096, ...Array(15).fill(256)];
  const n = lensP.reduce((a, b) => a + b, 0);
  const w = ph * pd;
  const attn = new SparseAttention(ph, 'local', pL, 32, { backend: 'wasm', threads });
  const t = (x) => ({ data: x, shape: [1, n, w] });
  const [qP, kP, vP] = [fill(n, w, 1), fill(n, w, 2), fill(n, w, 3)];
  const starts = lensP.map((_, i) => lensP.slice(0, i).reduce((a, b) => a + b, 0));
  const slice = (x, s0, len) => ({ data: x.subarray(s0 * w, (s0 + len) * w), shape: [1, len, w] });
  const pad = (x) => {
    const out = new Float32Array(16 * 4096 * w);
    lensP.forEach((len, i) => out.set(x.subarray(starts[i] * w, (starts[i] + len) * w), i * 4096 * w));
    return { data: out, shape: [16, 4096, w] };
  };
  const [qB, kB, vB] = [pad(qP), pad(kP), pad(vP)];
  const runPacked = async () => (await attn.forward(t(qP), t(kP), t(vP), { seqLengths: lensP })).data;
  const runSeparate = async () => {
    const out = new Float32Array(n * w);
    for (let i = 0; i < lensP.length; i++) out.set((await attn.forward(slice(qP, starts[i], lensP[i]), slice(kP, starts[i], lensP[i]), slice(vP, starts[i], lensP[i]))).data, starts[i] * w);
    return out;
  };
  const runPadded = async () => (await attn.forward(qB, kB, vB, { keyLengths: lensP })).data;
  const agree = errorRatio(await runPacked(), await runSeparate());
  if (!(agree <= 1)) throw new Error(`packed: one call and separate calls disagree (error ratio ${agree})`);
  const times = { packed: [], separate: [], padded: [] };
  const fns = { packed: runPacked, separate: runSeparate, padded: runPadded };
  for (const which of ['packed', 'separate', 'padded', 'padded', 'separate', 'packed']) {
    times[which].push((await timeIt(fns[which], { warmup: 1, minRuns: 5, minMs: 500 })).medianMs);
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [a, b, c] = [mean(times.packed), mean(times.separate), mean(times.padded)];
  const row = {
    case: 'packed', mode: 'local', localAttnCtx: pL, seqLengths: '4096 + 15 × 256', heads: ph, headDim: pd, threads,
    packedMs: +a.toFixed(2), separateSumMs: +b.toFixed(2), paddedMs: +c.toFixed(2),
    vsSeparate: +(a / b).toFixed(3), vsPadded: +(a / c).toFixed(3), runs: times, agreeErrorRatio: agree, load: load(),
  };
  rows.push(row);
  report(row);
  attn.dispose();
}
// kind 'decode': bench/report.mjs shows the newest such file when the newest full run has no decode rows.
const result = { kind: 'decode', date: new Date().toISOString(), machine: machineInfo(), loadEnd: loadavg(), command: `node bench/decode.mjs ${process.argv.slice(2).join(' ')}`, rows };
if (args.out) writeFileSync(args.out, JSON.stringify(result, null, 1));
if (args.json) console.log(JSON.stringify(result));
