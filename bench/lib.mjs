// Shared pieces of the benchmark scripts: workloads W1–W3 (core issue 2), seeded inputs,
// the timing loop (warm-up, then median), the additive mask bias every dense peer uses,
// the float64 check every implementation passes before its time counts, machine info.
// Plain Node on dist/ and node: built-ins only.
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { attentionReference, referenceMask } from '../dist/index.js';

/** Workloads of issue 2; each case is [mode, localAttnCtx, target ms for this library at 2 threads]. */
export const WORKLOADS = [
  { id: 'W1', batch: 4, nCtx: 1024, nEmbd: 256, heads: 4, cases: [['all', undefined, 75], ['local', 32, 10], ['strided', 32, 6]] },
  { id: 'W2', batch: 1, nCtx: 4096, nEmbd: 512, heads: 8, cases: [['all', undefined, 600], ['local', 256, 90], ['strided', 64, 12]] },
  { id: 'W3', batch: 1, nCtx: 256, nEmbd: 256, heads: 4, cases: [['all', undefined, 2]] },
];

/** `--name value` / `--flag` command-line arguments as an object. */
export function parseArgs(argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) continue;
    const next = argv[i + 1];
    out[argv[i].slice(2)] = next !== undefined && !next.startsWith('--') ? next : true;
  }
  return out;
}

/** Uniform [-1, 1) float32 tensor from a xorshift32 stream (same seed → same data everywhere). */
export function randomTensor(shape, seed) {
  const n = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    data[i] = (s / 4294967296) * 2 - 1;
  }
  return { data, shape };
}

/** q, k, v of a workload: seeds 1, 2, 3 as in bench/cpu.mjs. */
export function workloadInputs(w, nCtx = w.nCtx) {
  const shape = [w.batch, nCtx, w.nEmbd];
  return { shape, q: randomTensor(shape, 1), k: randomTensor(shape, 2), v: randomTensor(shape, 3) };
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Warm-up calls (warmup, and for at least warmupMs), then timed calls until both minRuns
 * and minMs are reached (or maxRuns).
 * Only `fn` is timed; everything it needs is built by the caller beforehand.
 */
export async function timeIt(fn, { warmup = 2, warmupMs = 0, minRuns = 5, minMs = 1500, maxRuns = 200 } = {}) {
  // At least `warmup` calls and `warmupMs` of calls: a process's first case otherwise pays
  // for tier-up and for its allocator settling (seen: W1 all 47.6 ms first vs 41.5 later).
  const w0 = performance.now();
  for (let i = 0; i < warmup || (performance.now() - w0 < warmupMs && i < 50); i++) await fn();
  const times = [];
  const start = performance.now();
  while (times.length < minRuns || performance.now() - start < minMs) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    if (times.length >= maxRuns) break;
  }
  return { medianMs: median(times), minMs: Math.min(...times), runs: times.length };
}

/** Run counts scaled to the cost of one call, so a full run stays within minutes. */
export function runsFor(estimateMs) {
  if (estimateMs > 5000) return { warmup: 0, minRuns: 2, minMs: 0 };
  if (estimateMs > 1500) return { warmup: 1, minRuns: 3, minMs: 0 };
  if (estimateMs > 300) return { warmup: 1, minRuns: 5, minMs: 0 };
  return { warmup: 2, minRuns: 7, minMs: 1000 };
}

/**
 * Masked entries get -Infinity: exp gives an exact 0 and no row is fully masked (see maskBias),
 * so no `-inf - -inf` arises. Not -1e9: onnxruntime-node's softmax (MLAS exp) takes a slow path
 * on huge finite negatives — W1 local went from ~60–90 ms to 0.3–3.9 s here, a bias artefact.
 */
export const MASKED_BIAS = -Infinity;

/**
 * [nCtx, nCtx] row-major additive bias from the library's own mask semantics (referenceMask):
 * 0 where query i may see key j, MASKED_BIAS elsewhere. Every causal mode allows j = i, so no
 * row is fully masked and softmax never sees an all-masked row.
 */
export function maskBias(nCtx, mode, L) {
  const allowed = referenceMask(1, mode, L, 32);
  const bias = new Float32Array(nCtx * nCtx);
  for (let i = 0; i < nCtx; i++) {
    let any = false;
    for (let j = 0; j < nCtx; j++) {
      if (allowed(0, i, j)) any = true;
      else bias[i * nCtx + j] = MASKED_BIAS;
    }
    if (!any) throw new Error(`maskBias: row ${i} of mode '${mode}' has no allowed key`);
  }
  return bias;
}

/** Allowed query–key pairs of one head (the mask is the same for every head in these modes). */
export function allowedPairs(nCtx, mode, L) {
  const allowed = referenceMask(1, mode, L, 32);
  let n = 0;
  for (let i = 0; i < nCtx; i++) for (let j = 0; j <= i; j++) if (allowed(0, i, j)) n++;
  return n;
}

/**
 * Float64 reference values for a case. Full `attentionReference` (from dist) where it is
 * cheap; above `fullLimit` allowed pairs (W2: tens of seconds in JS) only `rowsPerHead` query
 * rows per batch × head, computed with the same formula and the same referenceMask.
 */
export function referenceFor(w, mode, L, { q, k, v, shape }, { fullLimit = 5e7, rowsPerHead = 48 } = {}) {
  const pairs = allowedPairs(shape[1], mode, L) * w.batch * w.heads;
  if (pairs <= fullLimit) {
    const r = attentionReference(q, k, v, w.heads, mode, L, 32);
    return { kind: 'full', rows: null, data: r.data };
  }
  const [batch, nCtx, nEmbd] = shape;
  const d = nEmbd / w.heads;
  const allowed = referenceMask(w.heads, mode, L, 32);
  const rows = [];
  for (let r = 0; r < rowsPerHead; r++) rows.push(Math.min(nCtx - 1, Math.round((r * (nCtx - 1)) / (rowsPerHead - 1))));
  const data = new Float64Array(batch * rows.length * nEmbd); // [batch, rows, nEmbd]
  const s = new Float64Array(nCtx);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < w.heads; h++) {
      rows.forEach((i, ri) => {
        const qi = (b * nCtx + i) * nEmbd + h * d;
        let m = -Infinity;
        for (let j = 0; j < nCtx; j++) {
          if (!allowed(h, i, j)) { s[j] = NaN; continue; }
          let acc = 0;
          const kj = (b * nCtx + j) * nEmbd + h * d;
          for (let t = 0; t < d; t++) acc += q.data[qi + t] * k.data[kj + t];
          s[j] = acc / Math.sqrt(d);
          m = Math.max(m, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < nCtx; j++) if (!Number.isNaN(s[j])) sum += (s[j] = Math.exp(s[j] - m));
        const o = (b * rows.length + ri) * nEmbd + h * d;
        for (let j = 0; j < nCtx; j++) {
          if (Number.isNaN(s[j])) continue;
          const p = s[j] / sum, vj = (b * nCtx + j) * nEmbd + h * d;
          for (let t = 0; t < d; t++) data[o + t] += p * v.data[vj + t];
        }
      });
    }
  }
  return { kind: 'rows', rows, data };
}

/** Tolerances |a − r| <= atol + rtol·|r|: the library's own (issue 2) and a looser one for peers. */
export const TOL_OURS = { atol: 1e-5, rtol: 1e-4 };
export const TOL_PEERS = { atol: 1e-4, rtol: 1e-3 };

/** Compares a [batch, nCtx, nEmbd] float32 output with a reference from referenceFor. */
export function check(out, ref, shape, tol) {
  const [batch, nCtx, nEmbd] = shape;
  const rows = ref.rows ?? Array.from({ length: nCtx }, (_, i) => i);
  let maxErr = 0, bad = 0, first = null;
  for (let b = 0; b < batch; b++) {
    rows.forEach((i, ri) => {
      for (let c = 0; c < nEmbd; c++) {
        const a = out[(b * nCtx + i) * nEmbd + c];
        const r = ref.data[(b * rows.length + ri) * nEmbd + c];
        const e = Math.abs(a - r);
        if (!(e <= tol.atol + tol.rtol * Math.abs(r))) { bad++; first ??= { b, i, c, a, r }; }
        if (e > maxErr || Number.isNaN(e)) maxErr = Number.isNaN(e) ? Infinity : e;
      }
    });
  }
  return { ok: bad === 0, maxErr, bad, first, checked: ref.kind === 'full' ? 'all rows' : `${rows.length} rows per batch×head`, tol };
}

/** Machine and runtime, for every table header. */
export function machineInfo() {
  let cpuFlags = [];
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    cpuFlags = (line?.split(':')[1] ?? '').trim().split(/\s+/).filter((f) => /^(avx|avx2|fma|avx512f|avx512_vnni|amx_tile)$/.test(f));
  } catch { /* not Linux */ }
  return {
    hostname: os.hostname(), cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version, v8: process.versions.v8, cpuFlags,
  };
}

/** Useful GFLOP/s = 4 · headDim · allowed pairs · batch · heads / time. */
export function usefulFlops(w, mode, L, nCtx = w.nCtx) {
  return 4 * (w.nEmbd / w.heads) * allowedPairs(nCtx, mode, L) * w.batch * w.heads;
}

/** GPUBufferUsage bits (Node has no such global unless the 'webgpu' package installs it). */
export const GPU_USAGE = { COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 };

/** A storage buffer on `device` holding `data` (an input of forwardGPU). */
export function gpuBufferOf(device, data) {
  const buf = device.createBuffer({ size: data.byteLength, usage: GPU_USAGE.STORAGE | GPU_USAGE.COPY_DST });
  device.queue.writeBuffer(buf, 0, data);
  return buf;
}

// f32 → IEEE half bits (round to nearest even; values here are finite, |x| < 65504) and back,
// for the --dtype float16 runs of the GPU benches (the library converts nothing in JS)
const cvF32 = new Float32Array(1);
const cvU32 = new Uint32Array(cvF32.buffer);
export function toHalfBits(xs) {
  const out = new Uint16Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    cvF32[0] = xs[i];
    const f = cvU32[0];
    const sign = (f >>> 16) & 0x8000;
    const a = f & 0x7fffffff;
    if (a < 113 << 23) {
      cvF32[0] = Math.abs(xs[i]) + 0.5; // subnormal: 2^-24 units in the sum's low bits
      out[i] = sign | (cvU32[0] - (126 << 23));
    } else {
      out[i] = sign | ((a + ((15 - 127) << 23) + 0xfff + ((a >>> 13) & 1)) >>> 13);
    }
  }
  return out;
}
export function fromHalfBits(hs) {
  const out = new Float32Array(hs.length);
  for (let i = 0; i < hs.length; i++) {
    const h = hs[i], e = (h >> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
    out[i] = e === 0x1f ? (m ? NaN : s * Infinity) : e === 0 ? s * m * 2 ** -24 : s * (1024 + m) * 2 ** (e - 25);
  }
  return out;
}
