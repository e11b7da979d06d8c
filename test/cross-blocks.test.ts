// Cross-attention and the KV cache for the block-pattern modes (issue 17): 'fixed',
// 'longformer', 'bigbird' and custom layouts (a function with a token mask, per-head
// matrices with block masks, ONNX Runtime's CSR, FlexAttention's block lists) with nQ < nK
// (query offsets a multiple of the block size and not), nQ > nK (bidirectional: rows before
// position 0 have no layout row, zeros) and grouped K/V heads, on every CPU path against the
// float64 reference; plan() counts against a brute-force count of the reference's mask; the
// KV cache (prefill, chunks of odd lengths, decode steps, truncate) equal to the rows of the
// whole self-attention, on the CPU and the GPU.
// GPU compile cost (lavapipe): every GPU call here has grouped K/V heads at head dim 32 and
// block 64, so it runs the forward program with XATTN at (64, 32) only: one pipeline.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SparseAttention, attentionReference, referenceMask } from '../dist/index.js';
import { wasmPaths } from './backends.js';
import { expectClose, randomTensor } from './helpers.js';
import { REQUIRE_GPU, probeAdapter } from './gpu-env.js';

interface ModeCase {
  name: string;
  mode: 'fixed' | 'longformer' | 'bigbird' | 'custom';
  L?: (bs: number) => number;
  /** Token-level causal: the KV cache runs it (its rows equal those of the whole attention). */
  causal: boolean;
  options: (bs: number) => Record<string, unknown>;
}

/** Key blocks the custom layouts cover. */
const NB = 8;

const lowerBlocks = (h: number) => Array.from({ length: NB }, (_, qb) => Array.from({ length: NB }, (_, kb) => (kb <= qb && (qb - kb) % (h + 2) !== 1 ? 1 : 0)));

/** ONNX Runtime's CSR for two layouts: lower-triangular block rows with gaps. */
function onnxLayout() {
  const rowIdx: number[][] = [];
  const colIdx: number[][] = [];
  for (let l = 0; l < 2; l++) {
    const rows = [0];
    const cols: number[] = [];
    for (let qb = 0; qb < NB; qb++) {
      for (let kb = 0; kb <= qb; kb++) if (kb === qb || kb === 0 || (qb + kb + l) % 3 === 0) cols.push(kb);
      rows.push(cols.length);
    }
    rowIdx.push(rows);
    colIdx.push([...cols, ...new Array(NB * NB - cols.length).fill(-1)]);
  }
  return { blockRowIndices: rowIdx, blockColIndices: colIdx };
}

/** FlexAttention's block lists, [1, H = 1, NB, NB]: diagonal blocks under the mask, some below whole. */
function flexLayout(bs: number) {
  const kvNum = new Int32Array(NB);
  const kvIdx = new Int32Array(NB * NB);
  const fullNum = new Int32Array(NB);
  const fullIdx = new Int32Array(NB * NB);
  for (let qb = 0; qb < NB; qb++) {
    kvIdx[qb * NB + kvNum[qb]++] = qb;
    if (qb >= 2) kvIdx[qb * NB + kvNum[qb]++] = qb - 2; // masked, off the diagonal
    for (let kb = 0; kb < qb; kb++) if (kb !== qb - 2 && (kb + qb) % 2 === 1) fullIdx[qb * NB + fullNum[qb]++] = kb;
  }
  return { kvNumBlocks: kvNum, kvIndices: kvIdx, fullKvNumBlocks: fullNum, fullKvIndices: fullIdx, shape: [1, 1, NB, NB], blockSize: bs };
}

/** Block masks: 0 the lower triangle (diagonal blocks), 1 a checkerboard, 2 the first half of the rows. */
function blockMasks(bs: number) {
  const m = new Uint8Array(3 * bs * bs);
  for (let r = 0; r < bs; r++) {
    for (let c = 0; c < bs; c++) {
      m[r * bs + c] = c <= r ? 1 : 0;
      m[bs * bs + r * bs + c] = (r + c) % 2;
      m[2 * bs * bs + r * bs + c] = r < bs / 2 ? 1 : 0;
    }
  }
  const select = (head: number, qb: number, keyBlocks: Int32Array, ids: Int32Array) => {
    keyBlocks.forEach((kb, t) => {
      if (kb === qb) ids[t] = 0;
      else if ((kb + head) % 3 === 1) ids[t] = 1;
      else if ((kb + qb) % 4 === 0) ids[t] = 2;
    });
  };
  return { blocks: m, select };
}

const MODES: ModeCase[] = [
  { name: 'fixed', mode: 'fixed', L: (bs) => 2 * bs, causal: true, options: () => ({ causal: true, numVerts: 2, vertsize: 1 }) },
  { name: 'fixed bidir', mode: 'fixed', L: (bs) => 3 * bs, causal: false, options: () => ({ causal: false, numVerts: 1, vertsize: 1 }) },
  { name: 'longformer', mode: 'longformer', causal: true, options: () => ({ causal: true, globalBlockIndices: [0, 3] }) },
  { name: 'longformer bidir', mode: 'longformer', causal: false, options: () => ({ causal: false, numSlidingWindowBlocks: 3, globalBlockIndices: [1], globalBlockEndIndices: [3] }) },
  { name: 'bigbird', mode: 'bigbird', causal: true, options: () => ({ causal: true, numRandomBlocks: 1, differentLayoutPerHead: true, seed: 3 }) },
  { name: 'bigbird bidir', mode: 'bigbird', causal: false, options: () => ({ causal: false, numGlobalBlocks: 1, numRandomBlocks: 2, seed: 5 }) },
  {
    name: 'custom function + token mask', mode: 'custom', causal: true,
    options: () => ({ layout: (h: number, qb: number, kb: number) => kb <= qb && (qb - kb) % (h + 2) !== 1, mask: (h: number, i: number, j: number) => j <= i && (i + j + h) % 3 !== 0 }),
  },
  { name: 'custom matrices per head + block masks', mode: 'custom', causal: true, options: (bs) => ({ layout: [0, 1, 2, 3].map(lowerBlocks), mask: blockMasks(bs) }) },
  { name: 'custom bidir matrix', mode: 'custom', causal: false, options: () => ({ layout: Array.from({ length: NB }, (_, qb) => Array.from({ length: NB }, (_, kb) => ((qb * 3 + kb) % 4 !== 2 ? 1 : 0))) }) },
  { name: 'ONNX Runtime import', mode: 'custom', causal: true, options: () => ({ layout: onnxLayout() }) },
  { name: 'FlexAttention import + mask_mod', mode: 'custom', causal: true, options: (bs) => ({ layout: flexLayout(bs), mask: (_h: number, i: number, j: number) => j <= i && (i ^ j) % 5 !== 3 }) },
];

const args = (m: ModeCase, bs: number, kvHeads: number) => [m.mode, m.L?.(bs), bs, { ...m.options(bs), kvHeads }] as const;

function tensors(batch: number, nQ: number, nK: number, heads: number, kvHeads: number, d: number) {
  return {
    q: randomTensor([batch, nQ, heads * d], 1, 2),
    k: randomTensor([batch, nK, kvHeads * d], 2, 2),
    v: randomTensor([batch, nK, kvHeads * d], 3),
  };
}

// CPU: block 16, layouts of 8 blocks (128 positions). Offsets nK − nQ: 96 (1 × 97), 80 (17 × 97,
// a multiple of 16), 69 (27 × 96), 64 (32 × 96), 78 (5 × 83), −17 (40 × 23, bidirectional only).
const CPU_BS = 16;
const SHAPES: [number, number][] = [[1, 97], [17, 97], [27, 96], [32, 96], [5, 83], [40, 23]];
const xcases: { m: ModeCase; nQ: number; nK: number; heads: number; kvHeads: number }[] = [];
for (const m of MODES) {
  for (const [nQ, nK] of SHAPES) {
    if (nQ > nK && m.causal) continue;
    xcases.push({ m, nQ, nK, heads: 4, kvHeads: 2 });
  }
  xcases.push({ m, nQ: 21, nK: 90, heads: 4, kvHeads: 1 });
}
const xname = (c: (typeof xcases)[number]) => `${c.m.name} [2, ${c.nQ} q x ${c.nK} k] ${c.heads}/${c.kvHeads} heads`;

describe.each(wasmPaths())('$name', (path) => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  it.each(xcases.map((c) => [xname(c), c] as const))('%s', async (_n, c) => {
    const [mode, L, bs, options] = args(c.m, CPU_BS, c.kvHeads);
    const attn = new SparseAttention(c.heads, mode, L, bs, { ...options, ...path.options });
    instances.push(attn);
    const { q, k, v } = tensors(2, c.nQ, c.nK, c.heads, c.kvHeads, 6);
    const ref = attentionReference(q, k, v, c.heads, mode, L, bs, options);
    const out = path.sync ? attn.forwardSync(q, k, v) : await attn.forward(q, k, v);
    expectClose(out.data, ref.data, path.atol, path.rtol, `${path.name} ${xname(c)}`);
  });
  it('keyLengths per batch item with an offset', async () => {
    const m = MODES[2];
    const [mode, L, bs, options] = args(m, CPU_BS, 2);
    const attn = new SparseAttention(4, mode, L, bs, { ...options, ...path.options });
    instances.push(attn);
    const { q, k, v } = tensors(2, 13, 90, 4, 2, 6);
    const ref = attentionReference(q, k, v, 4, mode, L, bs, options, { keyLengths: [90, 41] });
    const out = path.sync ? attn.forwardSync(q, k, v, { keyLengths: [90, 41] }) : await attn.forward(q, k, v, { keyLengths: [90, 41] });
    expectClose(out.data, ref.data, path.atol, path.rtol, `${path.name} keyLengths`);
  });
});

/** Brute force over the reference's mask: allowed pairs, and (query tile, key block) pairs with at least one. */
function bruteCount(m: ModeCase, bs: number, heads: number, nQ: number, nK: number, lens: number[]) {
  const [mode, L, , options] = args(m, bs, heads);
  const allowed = referenceMask(heads, mode, L, bs, options, nK);
  const off = nK - nQ;
  let pairs = 0;
  let blocks = 0;
  for (const len of lens) {
    for (let h = 0; h < heads; h++) {
      const hit = new Set<number>();
      for (let i = 0; i < nQ; i++) {
        for (let j = 0; j < len; j++) {
          if (!allowed(h, off + i, j)) continue;
          pairs++;
          hit.add(Math.floor(i / bs) * 1e4 + Math.floor(j / bs));
        }
      }
      blocks += hit.size;
    }
  }
  return { pairs, blocks };
}

describe('the reference', () => {
  it.each(MODES.filter((m) => !m.causal).map((m) => [m.name, m] as const))('%s, 40 queries x 23 keys: the 17 rows before position 0 are zeros, the others are not', (_n, m) => {
    const [mode, L, bs, options] = args(m, CPU_BS, 2);
    const { q, k, v } = tensors(1, 40, 23, 4, 2, 6);
    const ref = attentionReference(q, k, v, 4, mode, L, bs, options);
    for (let h = 0; h < 4; h++) {
      for (let i = 0; i < 40; i++) {
        const row = ref.data.subarray(i * 24 + h * 6, i * 24 + h * 6 + 6);
        expect(row.every((x) => x === 0)).toBe(i < 17);
        expect(ref.lse[h * 40 + i] === -Infinity).toBe(i < 17);
      }
    }
  });
});

describe('plan() counts', () => {
  const cases = MODES.flatMap((m) =>
    ([[1, 97], [17, 97], [27, 96], [32, 96], [40, 23], [96, 96]] as const).filter(([nQ, nK]) => nQ <= nK || !m.causal).map(([nQ, nK]) => [`${m.name} ${nQ} x ${nK}`, m, nQ, nK] as const),
  );
  it.each(cases)('%s: allowedPairs and visited blocks equal a brute-force count of the reference mask', (_n, m, nQ, nK) => {
    const [mode, L, bs, options] = args(m, CPU_BS, 4);
    const attn = new SparseAttention(4, mode, L, bs, { ...options, backend: 'wasm' });
    const d = 8;
    const p = attn.plan([2, nQ, 4 * d], { nK });
    const want = bruteCount(m, bs, 4, nQ, nK, [nK, nK]);
    expect(p.allowedPairs).toBe(want.pairs);
    // every visited block holds an allowed pair of the call: the cost follows the pattern
    expect(p.visitedFlops / (4 * d * bs * bs)).toBe(want.blocks);
    const withLens = attn.plan([2, nQ, 4 * d], { nK, keyLengths: [nK, Math.max(1, nK - 30)] });
    expect(withLens.allowedPairs).toBe(bruteCount(m, bs, 4, nQ, nK, [nK, Math.max(1, nK - 30)]).pairs);
    attn.dispose();
  });
});

/** Rows t0 … t1 − 1 of every batch item of x ([batch, n, width]). */
function rows(x: Float32Array, batch: number, n: number, width: number, t0: number, t1: number): Float32Array {
  const out = new Float32Array(batch * (t1 - t0) * width);
  for (let b = 0; b < batch; b++) out.set(x.subarray((b * n + t0) * width, (b * n + t1) * width), b * (t1 - t0) * width);
  return out;
}

/**
 * Prefill in chunks of odd lengths, decode steps, truncate, more steps and a chunk: each call's
 * rows against the float64 reference of the whole self-attention and the same instance's
 * whole self-attention (within the path's tolerance: its query tiles group other rows), and
 * bit for bit against the same call without the cache (q against k, v of positions 0 … t1 − 1:
 * the same layouts and kernel path, K and V read from the cache instead). Returns the count of
 * elements that differ in that last comparison.
 */
async function cacheRun(attn: SparseAttention, m: ModeCase, bs: number, n: number, d: number, tol: [number, number], steps: [number, number][]) {
  const [heads, kvHeads, batch] = [4, 2, 2];
  const [mode, L, , options] = args(m, bs, kvHeads);
  const { q, k, v } = tensors(batch, n, n, heads, kvHeads, d);
  const ref = Float32Array.from(attentionReference(q, k, v, heads, mode, L, bs, options).data);
  const whole = (await attn.forward(q, k, v)).data;
  const cache = attn.createCache({ batch, capacity: n });
  let mismatched = 0;
  for (const [t0, t1] of steps) {
    if (t0 < cache.length) cache.truncate(t0);
    const t = (x: { data: Float32Array }, w: number, from = t0) => ({ data: rows(x.data, batch, n, w, from, t1), shape: [batch, t1 - from, w] });
    const out = await attn.forward(t(q, heads * d), t(k, kvHeads * d), t(v, kvHeads * d), { cache });
    expect(cache.length).toBe(t1);
    const what = `${m.name} tokens ${t0}..${t1 - 1}`;
    expectClose(out.data, Float64Array.from(rows(ref, batch, n, heads * d, t0, t1)), ...tol, `${what} vs the reference`);
    expectClose(out.data, Float64Array.from(rows(whole, batch, n, heads * d, t0, t1)), ...tol, `${what} vs the whole self-attention`);
    const uncached = (await attn.forward(t(q, heads * d), t(k, kvHeads * d, 0), t(v, kvHeads * d, 0))).data;
    for (let x = 0; x < uncached.length; x++) if (!Object.is(out.data[x], uncached[x])) mismatched++;
  }
  cache.dispose();
  return mismatched;
}

const CPU_N = 100;
// prefill 0..36, chunks 37..52 and 53..63, decode 64..79, roll back to 71, decode 71..84, chunk 85..99
const CPU_STEPS: [number, number][] = [[0, 37], [37, 53], [53, 64]];
for (let t = 64; t < 80; t++) CPU_STEPS.push([t, t + 1]);
for (let t = 71; t < 85; t++) CPU_STEPS.push([t, t + 1]);
CPU_STEPS.push([85, CPU_N]);

describe('KV cache on the CPU', () => {
  it.each(MODES.filter((m) => m.causal).map((m) => [m.name, m] as const))('%s: chunks, decode steps, truncate = rows of the whole self-attention', async (_n, m) => {
    const [mode, L, bs, options] = args(m, CPU_BS, 2);
    const attn = new SparseAttention(4, mode, L, bs, { ...options, backend: 'wasm', threads: 2 });
    const mismatched = await cacheRun(attn, m, bs, CPU_N, 8, [1e-5, 1e-4], CPU_STEPS);
    expect(mismatched).toBe(0);
    attn.dispose();
  });
  it('a decode step builds only the layout rows its query needs', () => {
    // A function layout is called per key block of the rows the step reads: with a cache of
    // 2^20 positions (65,536 blocks of 16) one step calls it for at most 2 rows, not 65,536².
    let calls = 0;
    const attn = new SparseAttention(2, 'custom', undefined, 16, { layout: (_h: number, qb: number, kb: number) => (calls++, kb === qb || kb === 0), backend: 'wasm' });
    const nK = 2 ** 20 + 5;
    const p = attn.plan([1, 1, 16], { nK });
    expect(p.allowedPairs).toBe(2 * (16 + 5)); // block 0, and keys 2^20 … 2^20 + 4 of the last block
    expect(calls).toBeLessThanOrEqual(2 * 2 * Math.ceil(nK / 16));
    attn.dispose();
  });
});

const gpu = probeAdapter();
const GPU_BS = 64;
const GPU_D = 32;

describe.runIf(gpu.ok || REQUIRE_GPU)('webgpu (forward program with XATTN, block 64, head dim 32)', () => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  const make = (m: ModeCase) => {
    const [mode, L, bs, options] = args(m, GPU_BS, 2);
    const a = new SparseAttention(4, mode, L, bs, { ...options, backend: 'webgpu' });
    instances.push(a);
    return a;
  };
  // The one pipeline compiled up front: on a cold Mesa cache under load it can take minutes.
  beforeAll(async () => {
    const { q, k, v } = tensors(1, 3, 5, 4, 2, GPU_D);
    await make(MODES[0]).forward(q, k, v);
  }, 900_000);

  // Offsets 200 (a multiple of 64 is 192: not), 128 (a multiple), 300 − 1 (decode), −40 (bidirectional).
  const gshapes: [number, number][] = [[100, 300], [128, 256], [1, 300], [70, 30]];
  const gcases = MODES.flatMap((m) => gshapes.filter(([nQ, nK]) => nQ <= nK || !m.causal).map(([nQ, nK]) => [`${m.name} [1, ${nQ} q x ${nK} k] 4/2 heads`, m, nQ, nK] as const));
  it.each(gcases)('%s', async (_n, m, nQ, nK) => {
    const attn = make(m);
    const [mode, L, bs, options] = args(m, GPU_BS, 2);
    const { q, k, v } = tensors(1, nQ, nK, 4, 2, GPU_D);
    const ref = attentionReference(q, k, v, 4, mode, L, bs, options);
    const out = await attn.forward(q, k, v);
    expect(attn.lastRun!.backend).toBe('webgpu');
    expectClose(out.data, ref.data, 1e-4, 1e-3, `webgpu ${m.name} ${nQ} x ${nK}`);
  });

  const GPU_N = 300;
  // prefill 0..99, chunk 100..170, decode 171..179, roll back to 175, decode 175..182, chunk 183..299
  const steps: [number, number][] = [[0, 100], [100, 171]];
  for (let t = 171; t < 180; t++) steps.push([t, t + 1]);
  for (let t = 175; t < 183; t++) steps.push([t, t + 1]);
  steps.push([183, GPU_N]);
  it.each(MODES.filter((m) => m.causal).map((m) => [m.name, m] as const))('KV cache in GPU buffers, %s: chunks, decode steps, truncate = rows of the whole self-attention', async (_n, m) => {
    const attn = make(m);
    const mismatched = await cacheRun(attn, m, GPU_BS, GPU_N, GPU_D, [1e-4, 1e-3], steps);
    expect(attn.lastRun!.backend).toBe('webgpu');
    expect(mismatched).toBe(0);
  });
});
