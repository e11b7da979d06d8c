// The byte-level Sparse Transformer of train.py, for inference in any JavaScript runtime:
// every attention runs through SparseAttention (one instance per layer kind, 8 query / 2 K/V
// heads), the dense parts (RMSNorm, RoPE, projections, SwiGLU, tied output) here, their
// matrix products on dense.mjs's WebAssembly SIMD kernel (or plain JS).
// The model: README.md "Model" and train.py's SparseLM.forward; the generation loop:
// generate() below (prefill in chunks, then one byte per step).
import { SparseAttention } from 'sparse-attention';
import { createDense } from './dense.mjs';
import { readWeights } from './weights.mjs';

export { readWeights } from './weights.mjs';

/**
 * Builds the model from model.json's object and the weights file's bytes.
 * options:
 *   path     'auto' | 'cpu' | 'webgpu': SparseAttention's backend ('cpu' = 'wasm')
 *   threads  CPU worker threads for the attention (SparseAttention's option)
 *   dense    'wasm' (default) | 'js'
 *   wasm     the dense kernel: a WebAssembly.Module, or { relaxed, simd } bytes or modules
 *   wasmThreaded  the .mt builds' { relaxed, simd } bytes: the dense kernel on denseThreads
 *            threads where shared memory and workers exist (dense-threads.mjs)
 *   denseThreads  threads for the dense products (default: threads, else the cores, at most 8)
 *   kv       'cache' (the library's KV cache, CPU path with worker threads) | 'host' (K and V
 *            kept here, each call passes the keys it needs): default 'cache' on the CPU where
 *            memory can be shared, 'host' elsewhere
 *   chunk    prefill rows per call (default 512)
 *   blocksize  SparseAttention's block size (default 32)
 */
export async function createModel(config, weightBytes, options = {}) {
  const { tensors, verified } = await readWeights(weightBytes, config);
  const dense = await createDense(options.dense ?? 'wasm', options.wasm, { threads: denseThreads(options), wasmThreaded: options.wasmThreaded });
  return new SparseLM(config, tensors, dense, { ...options, verified });
}

/** Threads for the dense products: options.denseThreads, else options.threads, else the cores (at most 8). */
export function denseThreads(options) {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 2;
  return options.denseThreads ?? options.threads ?? Math.min(8, cores);
}

const BACKEND = { auto: 'auto', cpu: 'wasm', wasm: 'wasm', webgpu: 'webgpu' };

function sharedMemoryWorks() {
  // The library's KV cache needs its threaded engine: SharedArrayBuffer (a page has it only
  // when cross-origin isolated) and workers (workerd, marked by WebSocketPair, has none).
  return typeof SharedArrayBuffer === 'function' && globalThis.crossOriginIsolated !== false && !globalThis.WebSocketPair;
}

export class SparseLM {
  constructor(config, tensors, dense, options = {}) {
    const c = (this.config = config);
    this.verified = options.verified ?? false;
    this.dense = dense;
    this.d = c.d_model;
    this.heads = c.n_head;
    this.kvHeads = c.n_kv_head;
    this.headDim = c.head_dim;
    this.ff = c.d_ff;
    this.eps = c.norm_eps;
    this.chunk = options.chunk ?? 512;
    this.path = options.path ?? 'auto';
    const backend = BACKEND[this.path];
    if (!backend) throw new Error(`sparse-lm: path must be 'auto', 'cpu' or 'webgpu' (got ${JSON.stringify(this.path)})`);
    this.kv = options.kv ?? (backend !== 'webgpu' && sharedMemoryWorks() ? 'cache' : 'host');
    if (this.kv !== 'cache' && this.kv !== 'host') throw new Error(`sparse-lm: kv must be 'cache' or 'host' (got ${JSON.stringify(this.kv)})`);

    const d = this.d, qw = this.heads * this.headDim, kw = this.kvHeads * this.headDim;
    const n = this.chunk;
    // The dense engine's memory: packed weights, then one chunk's activations.
    const weightFloats = c.n_layer * (qw * d + 2 * kw * d + d * qw + 3 * this.ff * d) + c.vocab_size * d;
    dense.reserve(weightFloats + n * (3 * d + qw + 2 * kw + 2 * this.ff) + n * c.vocab_size + 8 * 64);
    const t = (name) => tensors[name].data;
    this.layers = c.layers.map((spec, l) => ({
      mode: spec.attn,
      L: spec.L,
      attnNorm: t(`layers.${l}.attn_norm`),
      mlpNorm: t(`layers.${l}.mlp_norm`),
      wq: dense.weight(t(`layers.${l}.wq`), qw, d),
      wk: dense.weight(t(`layers.${l}.wk`), kw, d),
      wv: dense.weight(t(`layers.${l}.wv`), kw, d),
      wo: dense.weight(t(`layers.${l}.wo`), d, qw),
      w1: dense.weight(t(`layers.${l}.w1`), this.ff, d),
      w3: dense.weight(t(`layers.${l}.w3`), this.ff, d),
      w2: dense.weight(t(`layers.${l}.w2`), d, this.ff),
    }));
    this.embedding = t('tok_emb'); // [vocab, d]: the input lookup
    this.head = dense.weight(t('tok_emb'), c.vocab_size, d); // tied output layer
    this.finalNorm = t('final_norm');
    this.buf = {
      x: dense.alloc(n * d),
      h: dense.alloc(n * d),
      q: dense.alloc(n * qw),
      k: dense.alloc(n * kw),
      v: dense.alloc(n * kw),
      o: dense.alloc(n * qw),
      g: dense.alloc(n * this.ff),
      u: dense.alloc(n * this.ff),
      logits: dense.alloc(n * c.vocab_size),
    };
    // RoPE: angle(p, i) = p · base^(−2i/headDim), computed in f64 and rounded to f32 (as train.py).
    const half = this.headDim / 2;
    this.invFreq = Float64Array.from({ length: half }, (_, i) => c.rope_base ** ((-2 * i) / this.headDim));
    this.ropeCos = new Float32Array(0);
    this.ropeSin = new Float32Array(0);

    const attnOptions = { kvHeads: this.kvHeads, backend };
    if (options.threads !== undefined) attnOptions.threads = options.threads;
    this.attention = new Map();
    for (const spec of c.layers) {
      const key = `${spec.attn}:${spec.L}`;
      if (!this.attention.has(key)) this.attention.set(key, new SparseAttention(this.heads, spec.attn, spec.L, options.blocksize ?? 32, attnOptions));
    }
    this.timing = { attentionMs: 0, denseMs: 0 };
    this.lastRun = null;
  }

  /** The SparseAttention of layer l. */
  attn(l) {
    const s = this.config.layers[l];
    return this.attention.get(`${s.attn}:${s.L}`);
  }

  /** A generation state: one KV cache (or host K/V store) per layer, for up to `capacity` bytes. */
  createState(capacity = this.config.n_ctx_max) {
    const kw = this.kvHeads * this.headDim;
    const layers = this.config.layers.map((_, l) =>
      this.kv === 'cache'
        ? { cache: this.attn(l).createCache({ batch: 1, capacity }) }
        : { k: new Float32Array(capacity * kw), v: new Float32Array(capacity * kw) },
    );
    return {
      capacity,
      length: 0,
      layers,
      dispose() {
        for (const s of layers) s.cache?.dispose();
      },
    };
  }

  ensureRope(upto) {
    const half = this.headDim / 2;
    if (this.ropeCos.length >= upto * half) return;
    const n = Math.max(upto, 2 * this.ropeCos.length / half, 1024);
    this.ropeCos = new Float32Array(n * half);
    this.ropeSin = new Float32Array(n * half);
    for (let p = 0; p < n; p++) {
      for (let i = 0; i < half; i++) {
        const a = p * this.invFreq[i];
        this.ropeCos[p * half + i] = Math.cos(a);
        this.ropeSin[p * half + i] = Math.sin(a);
      }
    }
  }

  /** Rotate-half RoPE in place on rows [n, heads·headDim] at positions p0 …: pair (x[i], x[i + D/2]). */
  rope(x, n, heads, p0) {
    const D = this.headDim, half = D / 2;
    const cos = this.ropeCos, sin = this.ropeSin;
    for (let r = 0; r < n; r++) {
      const t = (p0 + r) * half;
      for (let h = 0; h < heads; h++) {
        const o = (r * heads + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[t + i], s = sin[t + i];
          const x1 = x[o + i], x2 = x[o + i + half];
          x[o + i] = x1 * c - x2 * s;
          x[o + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }

  /** y[r] = x[r] / sqrt(mean(x[r]²) + eps) · w, rows of d. */
  rmsNorm(x, w, y, n) {
    const d = this.d;
    for (let r = 0; r < n; r++) {
      const o = r * d;
      let ss = 0;
      for (let i = 0; i < d; i++) ss += x[o + i] * x[o + i];
      const inv = 1 / Math.sqrt(ss / d + this.eps);
      for (let i = 0; i < d; i++) y[o + i] = x[o + i] * inv * w[i];
    }
  }

  /**
   * Runs `tokens` (at most `chunk` bytes) at positions state.length …, appending to the
   * caches; returns the logits [rows.length, vocab] of the requested rows (indices into
   * this chunk; default: the last row) as a new Float32Array.
   */
  async step(tokens, state, rows = [tokens.length - 1]) {
    const n = tokens.length;
    if (n < 1 || n > this.chunk) throw new Error(`sparse-lm: step takes 1..${this.chunk} tokens (got ${n})`);
    const p0 = state.length;
    if (p0 + n > state.capacity) throw new Error(`sparse-lm: ${p0 + n} bytes exceed the state's capacity (${state.capacity})`);
    this.ensureRope(p0 + n);
    const { x, h, q, k, v, o, g, u, logits } = this.buf;
    const d = this.d, qw = this.heads * this.headDim, kw = this.kvHeads * this.headDim, ff = this.ff;
    const dense = this.dense;
    const emb = this.embedding;
    for (let r = 0; r < n; r++) x.set(emb.subarray(tokens[r] * d, tokens[r] * d + d), r * d);
    let tDense = 0, tAttn = 0;
    for (let l = 0; l < this.layers.length; l++) {
      const W = this.layers[l];
      let t0 = performance.now();
      this.rmsNorm(x, W.attnNorm, h, n);
      dense.matmul(h, W.wq, q, n, false);
      dense.matmul(h, W.wk, k, n, false);
      dense.matmul(h, W.wv, v, n, false);
      this.rope(q, n, this.heads, p0);
      this.rope(k, n, this.kvHeads, p0);
      let t1 = performance.now();
      tDense += t1 - t0;
      await this.attend(l, W, state.layers[l], p0, n);
      t0 = performance.now();
      tAttn += t0 - t1;
      dense.matmul(o, W.wo, x, n, true);
      this.rmsNorm(x, W.mlpNorm, h, n);
      dense.matmul(h, W.w1, g, n, false);
      dense.matmul(h, W.w3, u, n, false);
      dense.swiglu(g, u, n * ff); // g = silu(g) ⊙ u
      dense.matmul(g, W.w2, x, n, true);
      tDense += performance.now() - t0;
    }
    const t0 = performance.now();
    const V = this.config.vocab_size;
    const m = rows.length;
    for (let j = 0; j < m; j++) {
      const r = rows[j];
      if (!(r >= 0 && r < n)) throw new Error(`sparse-lm: row ${r} is outside this chunk of ${n}`);
      this.rmsNorm(x.subarray(r * d, r * d + d), this.finalNorm, h.subarray(j * d, j * d + d), 1);
    }
    dense.matmul(h, this.head, logits, m, false);
    const out = logits.slice(0, m * V);
    tDense += performance.now() - t0;
    this.timing.denseMs += tDense;
    this.timing.attentionMs += tAttn;
    state.length = p0 + n;
    return out;
  }

  /** o = attention of layer l for the chunk's n rows of q (k, v appended first). */
  async attend(l, W, s, p0, n) {
    const { q, k, v, o } = this.buf;
    const qw = this.heads * this.headDim, kw = this.kvHeads * this.headDim;
    const attn = this.attn(l);
    const qT = { data: q.subarray(0, n * qw), shape: [1, n, qw] };
    const out = o.subarray(0, n * qw);
    if (s.cache) {
      await attn.forward(qT, { data: k.subarray(0, n * kw), shape: [1, n, kw] }, { data: v.subarray(0, n * kw), shape: [1, n, kw] }, { cache: s.cache, out });
    } else {
      s.k.set(k.subarray(0, n * kw), p0 * kw);
      s.v.set(v.subarray(0, n * kw), p0 * kw);
      // 'local' reaches back L − 1 positions: only that window is passed (both rules depend
      // only on i − j, and the library aligns the queries to the last keys).
      const from = W.mode === 'local' ? Math.max(0, p0 - W.L + 1) : 0;
      const nK = p0 + n - from;
      const kT = { data: s.k.subarray(from * kw, (p0 + n) * kw), shape: [1, nK, kw] };
      const vT = { data: s.v.subarray(from * kw, (p0 + n) * kw), shape: [1, nK, kw] };
      await attn.forward(qT, kT, vT, { out });
    }
    this.lastRun = attn.lastRun;
  }

  /**
   * Feeds `bytes` into the state in chunks; returns the logits of the last byte, and those
   * at `positions` (absolute, within this prompt) as a Map position → Float32Array.
   */
  async prefill(bytes, state, positions = []) {
    const V = this.config.vocab_size;
    const at = new Map();
    let last = null;
    const p0 = state.length;
    for (let c = 0; c < bytes.length; c += this.chunk) {
      const part = bytes.subarray(c, Math.min(bytes.length, c + this.chunk));
      const want = positions.filter((p) => p - p0 >= c && p - p0 < c + part.length);
      const rows = [...want.map((p) => p - p0 - c), part.length - 1];
      const lg = await this.step(part, state, rows);
      want.forEach((p, j) => at.set(p, lg.slice(j * V, (j + 1) * V)));
      last = lg.slice(want.length * V);
    }
    return { last, at };
  }

  /**
   * Null when every layer's attention runs on this model's path with the shapes generation
   * uses (a prefill chunk of nQ = nK, then decode steps of nQ = 1 < nK, 2 K/V heads), else
   * the reason it cannot (e.g. the GPU path refusing grouped K/V heads).
   */
  async support() {
    const qw = this.heads * this.headDim, kw = this.kvHeads * this.headDim;
    const t = (n, w) => ({ data: new Float32Array(n * w).fill(0.01), shape: [1, n, w] });
    for (const [key, attn] of this.attention) {
      for (const [nQ, nK] of [[8, 8], [1, 9]]) {
        try {
          if (this.kv === 'cache') {
            const cache = attn.createCache({ batch: 1, capacity: nK });
            try {
              if (nK > nQ) await attn.forward(t(nK - nQ, qw), t(nK - nQ, kw), t(nK - nQ, kw), { cache });
              await attn.forward(t(nQ, qw), t(nQ, kw), t(nQ, kw), { cache });
            } finally {
              cache.dispose();
            }
          } else {
            await attn.forward(t(nQ, qw), t(nK, kw), t(nK, kw));
          }
        } catch (e) {
          return `${key} attention, ${nQ} queries × ${nK} keys on path '${this.path}': ${e.code ?? e.name}: ${e.message}`;
        }
        if (this.path === 'webgpu' && attn.lastRun?.backend !== 'webgpu') return `${key} attention ran on ${attn.lastRun?.backend}, not the GPU: ${attn.lastRun?.reason}`;
      }
    }
    return null;
  }

  dispose() {
    for (const a of this.attention.values()) a.dispose();
    this.dense.dispose();
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same samples in every runtime. */
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

/** The next byte: greedy (temperature 0), else softmax(logits / T) over the top k (0 = all), sampled with `random`. */
export function sample(logits, { temperature = 0, topK = 0, random } = {}) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (!(temperature > 0)) return best;
  let idx = Array.from(logits.keys());
  if (topK > 0 && topK < idx.length) idx = idx.sort((a, b) => logits[b] - logits[a] || a - b).slice(0, topK);
  const m = logits[best];
  const p = idx.map((i) => Math.exp((logits[i] - m) / temperature));
  let r = random() * p.reduce((a, b) => a + b, 0);
  for (let j = 0; j < idx.length; j++) {
    r -= p[j];
    if (r < 0) return idx[j];
  }
  return idx[idx.length - 1];
}

/**
 * Generates `tokens` bytes after `prompt` (a Uint8Array), calling onToken(byte, i) as each is
 * produced. Returns { tokens, prefillMs, decodeMs, tokensPerSecond, lastRun, timing }.
 */
export async function generate(model, prompt, { tokens = 200, temperature = 0, topK = 0, seed = 1, onToken, state } = {}) {
  if (prompt.length < 1) throw new Error('sparse-lm: the prompt must hold at least one byte');
  // The last byte generated is never fed back: prompt + tokens − 1 positions.
  const need = prompt.length + Math.max(0, tokens - 1);
  if (!state && need > model.config.n_ctx_max) {
    throw new Error(`sparse-lm: a ${prompt.length}-byte prompt and ${tokens} bytes need ${need} positions; the model runs up to ${model.config.n_ctx_max}`);
  }
  const own = !state;
  state ??= model.createState(need);
  const random = rng(seed);
  model.timing = { attentionMs: 0, denseMs: 0 };
  let t0 = performance.now();
  let { last } = await model.prefill(prompt, state);
  const prefillMs = performance.now() - t0;
  const prefillTiming = model.timing;
  model.timing = { attentionMs: 0, denseMs: 0 };
  const out = [];
  t0 = performance.now();
  const one = new Uint8Array(1);
  for (let i = 0; i < tokens; i++) {
    const b = sample(last, { temperature, topK, random });
    out.push(b);
    onToken?.(b, i);
    if (i + 1 === tokens) break;
    one[0] = b;
    last = await model.step(one, state);
  }
  const decodeMs = performance.now() - t0;
  if (own) state.dispose();
  return {
    tokens: out,
    prefillMs,
    decodeMs,
    tokensPerSecond: out.length > 1 ? ((out.length - 1) * 1000) / decodeMs : 0,
    lastRun: model.lastRun,
    timing: { prefill: prefillTiming, decode: model.timing },
  };
}
