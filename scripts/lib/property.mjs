// Seeded random configurations for property tests of every path against the float64
// reference (test/property.test.ts runs a few hundred in `npm test`, scripts/property.mjs
// thousands). A case is a pure function of its seed: `--replay <seed>` rebuilds it.
// Plain JS on the built package (dist/), so the nightly script needs no dev dependency.

/** mulberry32: a small seeded PRNG; returns floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BLOCK_SIZES = [8, 16, 32, 64, 128];
const MODES = ['all', 'local', 'strided', 'fixed', 'custom'];

/** Stable hash of small integers, for token masks that are functions of the seed. */
function hash(seed, h, i, j) {
  let x = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(h + 1, 0xc2b2ae35) ^ Math.imul(i + 7, 0x27d4eb2f) ^ Math.imul(j + 13, 0x165667b1);
  x ^= x >>> 15; x = Math.imul(x, 0x2c1b3c6d); x ^= x >>> 12;
  return x >>> 0;
}

/**
 * The configuration of case `seed`. `budget` caps the reference's work
 * (batch · heads · nCtx² · (headDim + 4)): shapes shrink (batch, heads, headDim, then nCtx)
 * until they fit, so the distribution still reaches nCtx 3000 and headDim 160.
 */
export function makeCase(seed, budget, { mods = false } = {}) {
  const r = rng(seed);
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const int = (lo, hi) => lo + Math.floor(r() * (hi - lo + 1)); // inclusive
  const logInt = (lo, hi) => Math.min(hi, Math.floor(Math.exp(Math.log(lo) + r() * (Math.log(hi + 1) - Math.log(lo)))));
  const mode = pick(MODES);
  const bs = pick(BLOCK_SIZES);
  const causal = r() < 0.6;
  let nCtx = r() < 0.15 ? pick([1, bs - 1, bs, bs + 1, 2 * bs + 1].filter((x) => x >= 1)) : logInt(1, 3000);
  let headDim = r() < 0.2 ? pick([1, 3, 4, 5, 64, 80, 128, 160]) : logInt(1, 160);
  let heads = int(1, 4);
  let batch = int(1, 3);
  const c = { seed, mode, bs, causal, batch, nCtx, heads, headDim, threads: int(1, 3) };
  if (mode === 'local' || mode === 'strided') c.L = r() < 0.2 ? int(1, 3) : logInt(1, 400);
  if (mode === 'fixed') {
    const stride = int(1, 6);
    c.L = stride * bs;
    const divisors = [];
    for (let x = 1; x <= stride; x++) if (stride % x === 0) divisors.push(x);
    c.vertsize = pick(divisors);
    const maxVerts = stride / c.vertsize;
    const options = [];
    for (let n = 1; n <= maxVerts; n++) options.push(n);
    c.numVerts = pick(options);
    heads = c.numVerts * int(1, Math.max(1, Math.floor(4 / c.numVerts)));
  }
  if (mode === 'custom') {
    c.layoutKind = pick(['shared', 'perHead', 'function']);
    c.density = pick([0.1, 0.3, 0.6, 1]);
    c.emptyRows = r() < 0.5; // some query-block rows with no key block at all
    c.tokenMask = r() < 0.5;
    // The same layout given as ONNX Runtime's CSR (its lower triangle, causal) or Flex's
    // lists (some blocks full: the token mask skips them); the mask per pair or per block.
    c.layoutForm = pick(['native', 'native', 'onnx', 'flex']);
    if (c.tokenMask) c.maskForm = pick(['pairs', 'blocks']);
  }
  const cost = () => batch * heads * nCtx * nCtx * (headDim + 4);
  while (cost() > budget && batch > 1) batch--;
  while (cost() > budget && heads > (c.numVerts ?? 1)) heads -= c.numVerts ?? 1;
  while (cost() > budget && headDim > 8) headDim = Math.ceil(headDim / 2);
  while (cost() > budget && nCtx > 1) nCtx = Math.floor(nCtx * 0.8);
  Object.assign(c, { batch, heads, headDim, nCtx });
  if (r() < 0.3) c.keyLengths = Array.from({ length: batch }, () => (r() < 0.2 ? pick([0, 1, nCtx]) : int(0, nCtx)));
  // The inference dimensions, drawn last so that a seed keeps every earlier draw: grouped K/V
  // heads (a divisor of heads), then at most one of cross-attention (nQ queries against the
  // nCtx keys, aligned bottom-right; nQ > nK only without causality, not 'strided'), a KV
  // cache filled by a prefill chunk and short steps (some rolled back), or packed sequences.
  if (heads > 1 && r() < 0.4) {
    const divisors = [];
    for (let x = 1; x < heads; x++) if (heads % x === 0) divisors.push(x);
    c.kvHeads = pick(divisors);
  }
  const kind = r();
  if (kind < 0.2) {
    const longer = !c.causal && mode !== 'custom' && mode !== 'strided' && r() < 0.3;
    c.nQ = longer ? nCtx + int(1, nCtx) : int(1, nCtx);
    if (c.nQ === nCtx) delete c.nQ;
  } else if (kind < 0.35) {
    const chunks = [int(0, nCtx)];
    while (chunks.reduce((a, b) => a + b, 0) < nCtx && chunks.length < 7) chunks.push(Math.min(int(1, 4), nCtx - chunks.reduce((a, b) => a + b, 0)));
    const left = nCtx - chunks.reduce((a, b) => a + b, 0);
    if (left > 0) chunks.push(left);
    c.cacheChunks = chunks.filter((x) => x > 0);
    c.rollback = r() < 0.5;
    delete c.keyLengths;
  } else if (kind < 0.5) {
    c.batch = 1;
    const parts = int(1, 6);
    const cuts = Array.from({ length: parts - 1 }, () => int(0, nCtx)).sort((a, b) => a - b);
    c.seqLengths = [...cuts, nCtx].map((x, i, xs) => x - (i ? xs[i - 1] : 0));
    if (c.keyLengths) c.keyLengths = [c.keyLengths[0]];
  }
  // `mods`: score modifiers and the lse output on half the cases, from a stream of their own
  // (the shapes above stay those of the same seed without them).
  if (mods) {
    const m = rng(seed ^ 0x5bd1e995);
    if (m() < 0.5) {
      if (m() < 0.5) c.softcap = [0.5, 2, 30][Math.floor(m() * 3)];
      if (m() < 0.5) c.alibi = m() < 0.5 ? 'press' : 'slopes';
      if (m() < 0.4) c.sinks = true;
      if (m() < 0.3) c.scale = [0.05, 0.3, 1][Math.floor(m() * 3)];
      c.lse = m() < 0.7;
    }
  }
  return c;
}

/** The constructor options of a case (the custom layout and token mask rebuilt from its seed). */
export function caseOptions(c) {
  const o = { causal: c.causal };
  if (c.softcap) o.softcap = c.softcap;
  if (c.alibi) o.alibi = c.alibi === 'press' ? true : Float32Array.from({ length: c.heads }, (_, h) => (hash(c.seed + 6, h, 0, 0) % 1000) / 4000);
  if (c.sinks) o.sinks = Float32Array.from({ length: c.heads }, (_, h) => (hash(c.seed + 7, h, 0, 0) % 1000) / 200 - 2.5);
  if (c.scale) o.scale = c.scale;
  if (c.mode === 'fixed') Object.assign(o, { numVerts: c.numVerts, vertsize: c.vertsize });
  if (c.mode === 'custom') {
    delete o.causal;
    const nB = Math.ceil(c.nCtx / c.bs);
    const on = (h, qb, kb) => {
      if (c.emptyRows && hash(c.seed, h, qb, -1) % 3 === 0) return false;
      return hash(c.seed + 1, h, qb, kb) / 4294967296 < c.density;
    };
    const matrix = (h) => Array.from({ length: nB }, (_, qb) => Array.from({ length: nB }, (_, kb) => (on(h, qb, kb) ? 1 : 0)));
    const layoutHeads = c.layoutKind === 'shared' ? 1 : c.heads;
    if (c.layoutForm === 'onnx') o.layout = onnxLayout(on, layoutHeads, nB);
    else if (c.layoutForm === 'flex') o.layout = flexLayout(on, (h, qb, kb) => hash(c.seed + 3, h, qb, kb) % 3 === 0, layoutHeads, nB);
    else if (c.layoutKind === 'shared') o.layout = matrix(0);
    else if (c.layoutKind === 'perHead') o.layout = Array.from({ length: c.heads }, (_, h) => matrix(h));
    else o.layout = (h, qb, kb) => on(h, qb, kb);
    if (c.tokenMask && c.maskForm === 'blocks') {
      const area = c.bs * c.bs;
      const blocks = Array.from({ length: 3 }, (_, m) => Uint8Array.from({ length: area }, (_, t) => (hash(c.seed + 4, m, t, 0) % 4 !== 0 ? 1 : 0)));
      o.mask = { blocks, select: (h, qb, keyBlocks, ids) => keyBlocks.forEach((kb, t) => { ids[t] = (hash(c.seed + 5, h, qb, kb) % 4) - 1; }) };
    } else if (c.tokenMask) {
      o.mask = (h, i, j) => hash(c.seed + 2, h, i, j) % 4 !== 0;
    }
  }
  return o;
}

/** ONNX Runtime SparseAttention's CSR of the lower triangle of `on`, one layout per layout head. */
function onnxLayout(on, layouts, nB) {
  const rows = [];
  const cols = [];
  for (let h = 0; h < layouts; h++) {
    const rp = [0];
    const cs = [];
    for (let qb = 0; qb < nB; qb++) {
      for (let kb = 0; kb <= qb; kb++) if (on(h, qb, kb)) cs.push(kb);
      rp.push(cs.length);
    }
    rows.push(rp);
    cols.push(cs);
  }
  const width = Math.max(1, ...cols.map((x) => x.length));
  return { blockRowIndices: rows, blockColIndices: cols.map((x) => [...x, ...new Array(width - x.length).fill(-1)]) };
}

/** FlexAttention's lists of `on` ([1, H, nB, nB]): blocks where `full` holds in full_kv_*, the rest in kv_*, descending. */
function flexLayout(on, full, heads, nB) {
  const num = [new Int32Array(heads * nB), new Int32Array(heads * nB)];
  const idx = [new Int32Array(heads * nB * nB).fill(-1), new Int32Array(heads * nB * nB).fill(-1)];
  for (let h = 0; h < heads; h++) {
    for (let qb = 0; qb < nB; qb++) {
      for (let kb = nB - 1; kb >= 0; kb--) {
        if (!on(h, qb, kb)) continue;
        const l = full(h, qb, kb) ? 1 : 0;
        const row = h * nB + qb;
        idx[l][row * nB + num[l][row]++] = kb;
      }
    }
  }
  return { kvNumBlocks: num[0], kvIndices: idx[0], fullKvNumBlocks: num[1], fullKvIndices: idx[1], shape: [1, heads, nB, nB] };
}

export function describeCase(c) {
  return JSON.stringify(c);
}

/** xorshift32 tensor in [-scale, scale); test/helpers.ts uses it too. */
export function randomTensor(shape, seed, scale = 1) {
  const n = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    data[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return { data, shape };
}

export function caseInputs(c) {
  const kvShape = [c.batch, c.nCtx, (c.kvHeads ?? c.heads) * c.headDim];
  const qShape = [c.batch, c.nQ ?? c.nCtx, c.heads * c.headDim];
  return { q: randomTensor(qShape, c.seed * 3 + 1, 2), k: randomTensor(kvShape, c.seed * 3 + 2, 2), v: randomTensor(kvShape, c.seed * 3 + 3) };
}

/** Rows [t0, t1) of every batch item of a [batch, n, w] tensor. */
function rows(t, t0, t1) {
  const [batch, n, w] = t.shape;
  const data = new Float32Array(batch * (t1 - t0) * w);
  for (let b = 0; b < batch; b++) data.set(t.data.subarray((b * n + t0) * w, (b * n + t1) * w), b * (t1 - t0) * w);
  return { data, shape: [batch, t1 - t0, w] };
}

/**
 * A case with a KV cache: each chunk appended and attended in turn (with `rollback`, a junk
 * chunk appended first and truncated away), against the reference of the chunk's queries
 * over every key cached so far. Returns the concatenated rows and their reference.
 */
async function runCached(lib, attn, c, options, q, k, v, sync) {
  const cache = attn.createCache({ batch: c.batch, capacity: c.nCtx });
  const got = [];
  const want = [];
  let at = 0;
  try {
    for (const n of c.cacheChunks) {
      if (c.rollback && at > 0) {
        // (at most the tokens still to come: a custom layout covers nCtx keys)
        const junk = Math.min(4, c.nCtx - at);
        const j = (t) => ({ data: new Float32Array(c.batch * junk * t.shape[2]).fill(7), shape: [c.batch, junk, t.shape[2]] });
        if (sync) attn.forwardSync(j(q), j(k), j(v), { cache });
        else await attn.forward(j(q), j(k), j(v), { cache });
        cache.truncate(at);
      }
      const qc = rows(q, at, at + n), kc = rows(k, at, at + n), vc = rows(v, at, at + n);
      const out = sync ? attn.forwardSync(qc, kc, vc, { cache }) : await attn.forward(qc, kc, vc, { cache });
      got.push(out.data.slice());
      want.push(lib.attentionReference(qc, rows(k, 0, at + n), rows(v, 0, at + n), c.heads, c.mode, c.L, c.bs, { ...options, kvHeads: c.kvHeads }).data);
      at += n;
    }
  } finally {
    cache.dispose();
  }
  const cat = (xs, T) => {
    const out = new T(xs.reduce((a, x) => a + x.length, 0));
    let o = 0;
    for (const x of xs) { out.set(x, o); o += x.length; }
    return out;
  };
  return { got: cat(got, Float32Array), want: cat(want, Float64Array) };
}

/** First element outside |a - r| <= atol + rtol·|r| (NaN must match NaN), or null. */
export function firstMismatch(actual, expected, atol, rtol) {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(a) || Number.isNaN(e)) {
      if (Number.isNaN(a) !== Number.isNaN(e)) return `index ${i} expected ${e} got ${a}`;
      continue;
    }
    if (a === e) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      return `index ${i} expected ${e} got ${a} (|a-r| = ${Math.abs(a - e)}, allowed ${atol} + ${rtol}·|r|)`;
    }
  }
  return null;
}

/**
 * createTensor() tensors of `attn` holding copies of `sources` (null: a zeroed one, e.g. for
 * `out`), all of `shape`.
 */
export function residentCopies(attn, shape, sources) {
  return sources.map((t) => {
    const r = attn.createTensor(shape);
    if (t) r.data.set(t.data);
    return r;
  });
}

/**
 * Runs case `c` on each path ({ name, options, sync, resident, atol, rtol }) and checks it against
 * the reference; also that the inputs are unchanged and the output aliases none of them.
 * Returns the failures as strings that carry the seed and configuration.
 */
export async function checkCase(lib, c, paths) {
  const { SparseAttention, attentionReference } = lib;
  const options = caseOptions(c);
  const { q, k, v } = caseInputs(c);
  const before = [q.data.slice(), k.data.slice(), v.data.slice()];
  const refOptions = c.kvHeads ? { ...options, kvHeads: c.kvHeads } : options;
  const full = c.cacheChunks ? null : attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, refOptions, { keyLengths: c.keyLengths, seqLengths: c.seqLengths });
  const ref = full?.data;
  // lse = m + ln l: the f32 rounding of the row's largest score and of its sum
  const LSE_TOL = { atol: 2e-5, rtol: 1e-5 };
  const failures = [];
  for (const path of paths) {
    if (c.cacheChunks && path.noCache) continue;
    const where = `${path.name}: seed ${c.seed} ${describeCase(c)}`;
    let attn;
    try {
      attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...refOptions, ...path.options, threads: path.sync ? undefined : c.threads });
      const lse = c.lse && !c.cacheChunks ? new Float32Array(c.batch * c.heads * (c.nQ ?? c.nCtx)).fill(NaN) : undefined;
      const fo = { keyLengths: c.keyLengths, seqLengths: c.seqLengths, ...(lse ? { lse } : {}) };
      let out;
      if (c.cacheChunks) {
        const { got, want } = await runCached(lib, attn, c, options, q, k, v, path.sync);
        const bad = firstMismatch(got, want, path.atol, path.rtol);
        if (bad) failures.push(`${where}: ${bad}`);
        if (path.options.backend && attn.lastRun?.backend !== path.options.backend) failures.push(`${where}: ran on ${attn.lastRun?.backend} (${attn.lastRun?.reason})`);
        continue;
      }
      if (path.resident) {
        // q, k, v and the result in createTensor() tensors: read and written in place
        const [rq, rk, rv, ro] = [q, k, v, q].map((t, i) => residentCopies(attn, t.shape, [i < 3 ? t : null])[0]);
        out = await attn.forward(rq, rk, rv, { ...fo, out: ro.data });
        if (out.data !== ro.data) failures.push(`${where}: the result is not the out tensor`);
        [rq, rk, rv].forEach((t, i) => {
          if (!sameBits(t.data, before[i])) failures.push(`${where}: createTensor input ${'qkv'[i]} was modified`);
        });
        out = { data: ro.data.slice() };
        [rq, rk, rv, ro].forEach((t) => attn.releaseTensor(t));
      } else {
        out = path.sync ? attn.forwardSync(q, k, v, fo) : await attn.forward(q, k, v, fo);
      }
      const bad = firstMismatch(out.data, ref, path.atol, path.rtol);
      if (bad) failures.push(`${where}: ${bad}`);
      const badLse = lse && firstMismatch(lse, full.lse, LSE_TOL.atol, LSE_TOL.rtol);
      if (badLse) failures.push(`${where}: lse ${badLse}`);
      const forced = path.options.backend;
      if (forced && forced !== 'auto' && attn.lastRun?.backend !== forced) {
        failures.push(`${where}: ran on ${attn.lastRun?.backend} instead of ${forced} (${attn.lastRun?.reason})`);
      }
      if ([q, k, v].some((t) => t.data.buffer === out.data.buffer)) failures.push(`${where}: the output aliases an input`);
      [q, k, v].forEach((t, i) => {
        if (!sameBits(t.data, before[i])) failures.push(`${where}: input ${'qkv'[i]} was modified`);
      });
    } catch (e) {
      failures.push(`${where}: threw ${e instanceof Error ? e.stack : String(e)}`);
    } finally {
      attn?.dispose();
    }
  }
  return failures;
}

function sameBits(a, b) {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}
