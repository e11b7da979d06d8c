// Large shapes (issue 15, defect 5): plan() of any shape returns at once, with the counts
// of the old per-block code, and builds no layout; a call whose layout cannot be held is
// refused with ERR_MEMORY_LIMIT before anything is allocated, and the instance stays usable.
// The oracle is main's layout and plan code as it was (test/oracle/old-layout.ts), which
// builds every block and counts per (batch item, head, group), on a grid of small shapes.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { __testing } from './internal.js';
import { type SparseAttentionOptions, makeConfig } from '../src/config.js';
import { bandCount, fixedBlockCount, fixedPairCount, sumClamp } from '../src/layout/count.js';
import { BandLayout } from '../src/layout/band.js';
import { CUSTOM_CALLS_MAX, FixedLayout } from '../src/layout/pattern.js';
import { bandBlockSize, buildGeometry, buildPlan } from '../src/plan.js';
import { REQUIRE_GPU, probeAdapter } from './gpu-env.js';
import { type OldBlockLayout, oldBuildGeometry, oldCounts } from './oracle/old-layout.js';

const HANG_GUARD = 20_000; // ms; plan() takes milliseconds, this only stops a hang

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What fn throws (null when it returns). */
function thrown(fn: () => unknown): { code?: string; message: string } | null {
  try {
    fn();
    return null;
  } catch (e) {
    return e as { code?: string; message: string };
  }
}

type Mode = 'all' | 'local' | 'strided' | 'fixed' | 'custom';
interface GridCase {
  mode: Mode;
  L?: number;
  bs: number;
  heads: number;
  shape: [number, number, number];
  keyLengths: Int32Array | null;
  options: SparseAttentionOptions;
  bandBlock?: number;
}

/** First index where two arrays differ (a length difference counts), or -1. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

function expectSameCsr(a: OldBlockLayout, b: OldBlockLayout, what: string): void {
  expect([b.blockSize, b.nQB, b.nKB], what).toEqual([a.blockSize, a.nQB, a.nKB]);
  for (const field of ['rowPtr', 'cols', 'maskIds'] as const) {
    expect(firstDifference(a[field], b[field]), `${what} ${field}: first index that differs`).toBe(-1);
  }
  expect(b.masks.length, `${what} masks`).toBe(a.masks.length);
  a.masks.forEach((m, i) => expect(firstDifference(m, b.masks[i]), `${what} mask ${i}: first index that differs`).toBe(-1));
}

/** The grid: every mode × causal, L and block sizes around each other, nCtx around the blocks, key lengths. */
function grid(): GridCase[] {
  const r = rng(15_005);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const cases: GridCase[] = [];
  const lengths = (bs: number, L: number) => [...new Set([1, 2, 7, bs - 1, bs, bs + 1, 2 * bs + 1, L - 1, L, L + 1, 3 * L + 5, 100, 257, 700])].filter((n) => n >= 1);
  for (const causal of [true, false]) {
    for (const bs of [8, 16, 32, 64, 128]) {
      // band modes: L below, at, above the block; the band block chosen by the CPU rule, and the GPU's 64 / 128
      for (const [mode, L] of [['all', undefined], ['local', 1], ['local', 5], ['local', bs], ['local', bs + 3], ['local', 3 * bs - 1], ['strided', 1], ['strided', 3], ['strided', 29], ['strided', bs], ['strided', 300]] as const) {
        for (const nCtx of lengths(bs, L ?? bs)) {
          const batch = pick([1, 2, 3]);
          const keyLengths = r() < 0.5 ? null : Int32Array.from({ length: batch }, () => pick([0, nCtx, Math.floor(r() * (nCtx + 1))]));
          cases.push({ mode, L, bs, heads: pick([1, 2, 4]), shape: [batch, nCtx, 0], keyLengths, options: { causal }, bandBlock: pick([undefined, undefined, 64, 128]) });
        }
      }
      // fixed: stride 1..4 blocks, several summary patterns
      for (const [stride, numVerts, vertsize] of [[1, 1, 1], [2, 1, 1], [2, 2, 1], [3, 1, 3], [4, 2, 2], [4, 4, 1], [4, 1, 2]] as const) {
        const L = stride * bs;
        for (const nCtx of lengths(bs, L).filter((n) => n <= 40 * bs)) {
          const batch = pick([1, 2, 3]);
          const keyLengths = r() < 0.5 ? null : Int32Array.from({ length: batch }, () => pick([0, nCtx, Math.floor(r() * (nCtx + 1))]));
          cases.push({ mode: 'fixed', L, bs, heads: numVerts * pick([1, 2, 3]), shape: [batch, nCtx, 0], keyLengths, options: { causal, numVerts, vertsize } });
        }
      }
    }
  }
  // custom: shared matrix, per-head matrices with an empty row, function layout with a token mask
  const shared = [[1, 0, 0, 0, 1], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0, 0, 0, 1, 1]];
  const empty = [[0, 0, 0, 0, 0], [1, 0, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 1, 0], [1, 0, 0, 0, 0]];
  for (const bs of [8, 16, 32]) {
    for (const nCtx of [1, bs - 1, bs, bs + 1, 2 * bs + 3, 5 * bs]) {
      const keyLengths = Int32Array.from([nCtx, Math.floor(nCtx / 2), 0]);
      cases.push({ mode: 'custom', bs, heads: 2, shape: [3, nCtx, 0], keyLengths, options: { layout: shared } });
      cases.push({ mode: 'custom', bs, heads: 2, shape: [1, nCtx, 0], keyLengths: null, options: { layout: [shared, empty] } });
      cases.push({
        mode: 'custom', bs, heads: 3, shape: [2, nCtx, 0], keyLengths: keyLengths.subarray(1),
        options: { layout: (h: number, qb: number, kb: number) => kb <= qb && (qb - kb) % (h + 2) !== 1, mask: (h: number, i: number, j: number) => (i + j + h) % 3 !== 0 },
      });
    }
  }
  for (const c of cases) c.shape[2] = c.heads * pick([1, 3, 8]);
  return cases;
}

describe('closed-form counts equal the old per-block counts', () => {
  const cases = grid();
  it(`${cases.length} shapes × modes × causal × key lengths: allowedPairs, usefulFlops, visitedFlops, density, blocksVisited, and the CSR`, () => {
    let compared = 0;
    for (const c of cases) {
      const config = makeConfig(c.heads, c.mode, c.L, c.bs, c.options);
      const what = `${c.mode} L=${c.L} bs=${c.bs} heads=${c.heads} shape=[${c.shape}] keyLengths=${c.keyLengths ? `[${Array.from(c.keyLengths)}]` : '-'} ${JSON.stringify(c.options)} bandBlock=${c.bandBlock}`;
      const geometry = buildGeometry(config, c.shape[1], c.bandBlock);
      const plan = buildPlan(config, geometry, c.shape, c.keyLengths);
      if (c.mode !== 'custom') expect(geometry.layouts.some((l) => l.isBuilt), `${what}: plan built a layout`).toBe(false);
      const old = oldBuildGeometry(config, c.shape[1], bandBlockSize, c.bandBlock);
      const want = oldCounts(config, old, c.shape, c.keyLengths);
      const got = { allowedPairs: plan.allowedPairs, usefulFlops: plan.usefulFlops, visitedFlops: plan.visitedFlops, density: plan.density, blocksVisited: plan.blocksVisited };
      expect(got, what).toEqual(want);
      expect([geometry.blockSize, geometry.seqLen, geometry.regroup, Array.from(geometry.headLayout)], what).toEqual([old.blockSize, old.seqLen, old.regroup, Array.from(old.headLayout)]);
      old.layouts.forEach((l, i) => {
        expect(geometry.layouts[i].maskCount, `${what} layout ${i} maskCount`).toBe(l.masks.length);
        expect(geometry.layouts[i].entries, `${what} layout ${i} entries`).toBe(BigInt(l.cols.length));
        expectSameCsr(l, geometry.layouts[i], `${what} layout ${i}`);
      });
      compared++;
    }
    expect(compared).toBeGreaterThan(1500);
  }, 120_000);

  it('the closed forms against brute force on random bands and fixed patterns', () => {
    const r = rng(7);
    const int = (n: number) => Math.floor(r() * n);
    for (let t = 0; t < 400; t++) {
      const [a, b, m] = [int(40) - 20, int(40) - 20, int(15)];
      let want = 0;
      for (let x = a; x <= b; x++) want += Math.min(Math.max(x, 0), m);
      expect(sumClamp(BigInt(a), BigInt(b), BigInt(m))).toBe(BigInt(want));
      const [nQ, nK] = [int(30), int(30)];
      const lo = r() < 0.2 ? -Infinity : int(40) - 30;
      const hi = r() < 0.2 ? Infinity : int(40) - 10;
      let band = 0;
      for (let i = 0; i < nQ; i++) for (let j = 0; j < nK; j++) band += j - i >= lo && j - i <= hi ? 1 : 0;
      expect(bandCount(nQ, nK, lo, hi), `band ${nQ}×${nK} [${lo}, ${hi}]`).toBe(BigInt(band));
      const s = 1 + int(6);
      const vs = [1, 2, 3, 6].filter((v) => s % v === 0 && v <= s)[int(2)] ?? 1;
      const s0 = vs * int(s / vs);
      const causal = r() < 0.5;
      const f = { s, s0, vs, causal };
      const on = (qb: number, kb: number) => !(causal && kb > qb) && (Math.floor(kb / s) === Math.floor(qb / s) || (kb % s >= s0 && kb % s < s0 + vs));
      const [A, B] = [int(25), int(25)];
      let blocks = 0;
      for (let qb = 0; qb < A; qb++) for (let kb = 0; kb < B; kb++) blocks += on(qb, kb) ? 1 : 0;
      expect(fixedBlockCount(f, A, B), `fixed blocks ${JSON.stringify(f)} ${A}×${B}`).toBe(BigInt(blocks));
      const bs = [1, 2, 3, 8][int(4)];
      const [q, k] = [int(60), int(60)];
      let pairs = 0;
      for (let i = 0; i < q; i++) {
        for (let j = 0; j < k; j++) {
          const [qb, kb] = [Math.floor(i / bs), Math.floor(j / bs)];
          pairs += on(qb, kb) && !(causal && qb === kb && j > i) ? 1 : 0;
        }
      }
      expect(fixedPairCount(f, bs, q, k), `fixed pairs ${JSON.stringify(f)} bs ${bs} ${q}×${k}`).toBe(BigInt(pairs));
    }
  });
});

// Expected totals for one head, straight from each mode's definition (exact integers).
const B = BigInt;
const tri = (n: bigint) => (n * (n + 1n)) / 2n;
/** 'all' causal: Σ_i (i + 1) pairs; blocks: Σ_qb (qb + 1). */
const allCausal = (n: number, bs: number) => ({ pairs: tri(B(n)), blocks: tri(B(Math.ceil(n / bs))) });
/** 'local' causal with window L: Σ_i min(i + 1, L); blocks by the band [-(L-1), 0] of offsets. */
function localCausal(n: number, L: number, bs: number) {
  const N = B(n);
  const l = B(L);
  const pairs = N <= l ? tri(N) : tri(l) + (N - l) * l;
  const nB = B(Math.ceil(n / bs));
  const w = B(-Math.ceil((-(L - 1) - bs + 1) / bs) + 1); // blocks per full row
  const blocks = nB <= w ? tri(nB) : tri(w) + (nB - w) * w;
  return { pairs, blocks };
}
/** 'strided' causal with stride L (nCtx a multiple of L): L causal attentions of n / L tokens. */
function stridedCausal(n: number, L: number, bs: number) {
  const m = n / L;
  const a = allCausal(m, bs);
  return { pairs: B(L) * a.pairs, blocks: B(L) * a.blocks };
}
/** 'fixed' causal, numVerts = vertsize = 1, stride s blocks (nCtx a multiple of L): row p of window w sees p + 1 + w blocks. */
function fixedCausal(n: number, L: number, bs: number) {
  const s = B(L / bs);
  const W = B(n / L);
  const blocks = W * tri(s) + s * ((W * (W - 1n)) / 2n);
  const b = B(bs);
  return { pairs: b * b * blocks - B(n / bs) * ((b * (b - 1n)) / 2n), blocks };
}

describe('plan() of very large shapes returns at once, with exact counts rounded once', () => {
  const L = 128;
  const modes: [Mode, number | undefined][] = [['all', undefined], ['local', L], ['strided', L], ['fixed', L]];
  const shapes: [number, number, number][] = [[1, 2 ** 21, 64], [2 ** 31, 8, 8], [1, 2 ** 30, 8]];
  for (const shape of shapes) {
    it.each(modes)(`%s, shape [${shape.join(', ')}]`, (mode, L) => {
      const heads = shape[2] === 64 ? 4 : 1;
      const attn = new SparseAttention(heads, mode, L, 32, { backend: 'wasm' });
      const p = attn.plan(shape);
      const [batch, n] = shape;
      // the CPU band block: bandBlockSize(32, seqLen) is 32 unless the (regrouped) sequence is shorter
      const bandBs = (seqLen: number) => Math.max(8, Math.min(32, Math.ceil(seqLen / 8) * 8));
      const one =
        mode === 'all' ? allCausal(n, bandBs(n))
        : mode === 'local' ? localCausal(n, L!, bandBs(n))
        : mode === 'strided' ? (n >= L! ? stridedCausal(n, L!, bandBs(n / L!)) : { pairs: B(n), blocks: B(n) }) // nCtx < L: n groups of one token
        : n >= L! ? fixedCausal(n, L!, 32) : { pairs: tri(B(n)), blocks: 1n }; // nCtx < L: one lower-triangular block
      const seqs = B(batch) * B(heads);
      expect(p.allowedPairs).toBe(Number(seqs * one.pairs));
      expect(p.usefulFlops).toBe(Number(4n * B(shape[2] / heads) * seqs * one.pairs));
      expect(p.visitedFlops).toBe(Number(4n * B(shape[2] / heads) * seqs * one.blocks * B(p.blockSize) ** 2n));
      expect(p.density).toBe(p.allowedPairs / (batch * heads * n * n));
      expect(p.sequences).toBe(batch * heads * (mode === 'strided' ? Math.min(L!, n) : 1));
      attn.dispose();
    }, HANG_GUARD);
  }

  it('with key lengths: one count per distinct length, not per batch item', () => {
    // 200,000 batch items of two lengths count as 120,000 of one and 80,000 of the other
    const attn = new SparseAttention(2, 'strided', 7, 32, { backend: 'wasm' });
    const n = 2 ** 20;
    const [a, b] = [n, 12_345];
    const keyLengths = Int32Array.from({ length: 200_000 }, (_, i) => (i % 5 < 3 ? a : b));
    const mixed = attn.plan([200_000, n, 8], { keyLengths });
    const one = (len: number) => BigInt(attn.plan([1, n, 8], { keyLengths: [len] }).allowedPairs);
    expect(mixed.allowedPairs).toBe(Number(120_000n * one(a) + 80_000n * one(b)));
    expect(attn.plan([200_000, n, 8], { keyLengths: new Int32Array(200_000).fill(n) }).allowedPairs).toBe(attn.plan([200_000, n, 8]).allowedPairs);
    attn.dispose();
  }, HANG_GUARD);

  it('plan() of the 2M-token shape under a 512 MB heap: every mode, in a child process', () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `
      const { SparseAttention } = await import(${JSON.stringify(dist)});
      for (const [mode, L] of [['all'], ['local', 128], ['strided', 128], ['fixed', 128]]) {
        for (const causal of [true, false]) {
          const attn = new SparseAttention(4, mode, L, 32, { backend: 'wasm', causal });
          const p = attn.plan([1, 2 ** 21, 64]);
          if (!(p.allowedPairs > 0)) throw new Error('no pairs');
          attn.dispose();
        }
      }`;
    const r = spawnSync(process.execPath, ['--max-old-space-size=512', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: HANG_GUARD });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, HANG_GUARD + 5000);
});

describe('a call whose layout cannot be held is refused before allocating', () => {
  const memory = () => Math.max(0, ...__testing.engines().map((e) => e.memoryBytes));
  const tiny = { data: Float32Array.from({ length: 16 }, (_, i) => i / 16), shape: [1, 2, 8] };

  it("'all' at 2,097,152 tokens: ERR_MEMORY_LIMIT naming the shape and wasm32's 4 GiB; the instance still runs", async () => {
    const n = 2 ** 21;
    const x = { data: new Float32Array(n * 8), shape: [1, n, 8] }; // 64 MiB, zero pages never touched
    const attn = new SparseAttention(1, 'all', undefined, 32, { backend: 'wasm', threads: 2 });
    const before = await attn.forward(tiny, tiny, tiny);
    const mem0 = memory();
    const err = await attn.forward(x, x, x).then(() => null, (e) => e);
    expect(err?.code).toBe('ERR_MEMORY_LIMIT');
    expect(err.message).toMatch(
      /^SparseAttention: a call of shape \[1, 2097152, 8\] needs 16\.\d\d GiB \(\d+ bytes\) of WebAssembly memory; wasm32 allows at most 4\.00 GiB \(4294967296 bytes\): the block layout of mode 'all' at nCtx 2097152 \(65536 × 65536 blocks of 32\) has 2147516416 block pairs \(16\.\d\d GiB of tables\)/,
    );
    expect(() => attn.forwardSync(x, x, x)).toThrow(/needs 16\.\d\d GiB/);
    expect(memory()).toBe(mem0);
    expect(attn.plan([1, n, 8]).allowedPairs).toBe(n * (n + 1) / 2);
    expect((await attn.forward(tiny, tiny, tiny)).data).toEqual(before.data);
    attn.dispose();
  }, HANG_GUARD);

  it.each([
    ['local', 16, { causal: false }],
    ['strided', 3, {}],
    ['fixed', 64, { numVerts: 2, vertsize: 1 }],
  ] as const)('%s, under a lowered memory ceiling: refused (tables + one head > the ceiling), runs once it is lifted', async (mode, L, options) => {
    const shape = [2, 3000, 16];
    const x = { data: Float32Array.from({ length: 2 * 3000 * 16 }, (_, i) => Math.sin(i)), shape };
    const attn = new SparseAttention(2, mode, L, 16, { backend: 'wasm', threads: 2, ...options });
    await attn.forward(tiny, tiny, tiny);
    __testing.faults.maxMemoryBytes = 16 * 3000 * 8; // one head's q, k, v, o: no room left for tables
    try {
      const err = await attn.forward(x, x, x).then(() => null, (e) => e);
      expect(err?.code).toBe('ERR_MEMORY_LIMIT');
      expect(err.message).toMatch(new RegExp(`a call of shape \\[2, 3000, 16\\] needs .* bytes\\) of WebAssembly memory; wasm32 allows at most 0\\.0004 GiB \\(384000 bytes\\): .*the block layout of mode '${mode}'`));
    } finally {
      __testing.faults.maxMemoryBytes = null;
    }
    const out = await attn.forward(x, x, x);
    expect(out.data.every(Number.isFinite)).toBe(true);
    attn.dispose();
  }, HANG_GUARD);

  it('a layout over 4 GiB of tables is never built, whoever asks for its CSR', () => {
    const all = new BandLayout(2 ** 21, 32, -Infinity, 0, "the block layout of mode 'all' at nCtx 2097152");
    const fixed = new FixedLayout(2 ** 21, 32, 0, { localAttnCtx: 64, numVerts: 1, vertsize: 1, causal: false }, "the block layout of mode 'fixed'");
    for (const l of [all, fixed]) {
      const err = thrown(() => l.cols);
      expect(err?.code).toBe('ERR_MEMORY_LIMIT');
      expect(err?.message).toMatch(/\(\d+ block pairs\) needs \d+\.\d\d GiB \(\d+ bytes\) of block tables; any path \(wasm32 memory, one WebGPU binding\) allows at most 4\.00 GiB/);
      expect(l.isBuilt).toBe(false);
    }
    expect(new BandLayout(1000, 32, -Infinity, 0, 'small').cols.length).toBe(32 * 33 / 2);
  });

  it('a custom function layout past the call budget: refused before the first call, at plan()', () => {
    let calls = 0;
    const layout = () => {
      calls++;
      return true;
    };
    const attn = new SparseAttention(1, 'custom', undefined, 8, { backend: 'wasm', layout });
    const nB = Math.ceil(Math.sqrt(CUSTOM_CALLS_MAX)) + 1;
    const err = thrown(() => attn.plan([1, nB * 8, 8]));
    expect(err?.code).toBe('ERR_MEMORY_LIMIT');
    expect(err?.message).toMatch(/the custom block layout at nCtx \d+ \(\d+ × \d+ blocks of 8\) needs more than 67108864 calls of options\.layout/);
    expect(calls).toBe(0);
    expect(attn.plan([1, 64, 8]).allowedPairs).toBe(64 * 64);
    attn.dispose();
  });
});

describe.runIf(probeAdapter().ok || REQUIRE_GPU)('webgpu: a layout larger than the storage binding', () => {
  it('is refused before it is built, naming the binding limit; the instance still runs on the GPU', async () => {
    // 'all' at 65,536 tokens, head dim 1: 256 KiB per tensor, but 131,072+ block pairs of layout metadata
    const n = 65_536;
    const attn = new SparseAttention(1, 'all', undefined, 32, { backend: 'webgpu', webgpu: { maxBindingBytes: 512 * 1024 } });
    const x = { data: new Float32Array(n), shape: [1, n, 1] };
    const err = await attn.forward(x, x, x).then(() => null, (e) => e);
    expect(err?.code).toMatch(/^ERR_/);
    expect(err.message).toMatch(
      /a call of shape \[1, 65536, 1\] needs [\d.]+ GiB \(\d+ bytes\) of one storage binding \(the layout metadata\); the WebGPU device allows at most 0\.0005 GiB \(524288 bytes\): the block layout of mode 'all' at nCtx 65536/,
    );
    const tiny = { data: Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)), shape: [1, 4, 8] };
    const out = await attn.forward(tiny, tiny, tiny);
    expect(attn.lastRun?.backend).toBe('webgpu');
    expect(out.data.every(Number.isFinite)).toBe(true);
    attn.dispose();
  }, 120_000);
});
