// Engine tensors (createTensor / releaseTensor) and forward's `out` option: same results as
// plain arrays, bit for bit; results written where asked; inputs untouched; memory reused;
// tensors made or released while a call is in flight never disturb it.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { __testing } from './internal.js';
import { describeCase, expectClose, inputs, reference, type Case } from './helpers.js';
import { residentCopies } from '../scripts/lib/property.mjs';

const cases: Case[] = [
  { mode: 'all', bs: 16, batch: 2, nCtx: 37, heads: 2, headDim: 16 },
  { mode: 'local', L: 9, bs: 8, batch: 1, nCtx: 50, heads: 3, headDim: 3 },
  { mode: 'strided', L: 5, bs: 16, batch: 2, nCtx: 41, heads: 2, headDim: 8 },
  { mode: 'fixed', L: 32, bs: 16, batch: 1, nCtx: 70, heads: 2, headDim: 4, options: { numVerts: 1, vertsize: 1 } },
  { mode: 'all', bs: 32, batch: 1, nCtx: 20, heads: 1, headDim: 1, options: { causal: false } },
];

const made: SparseAttention[] = [];
function instance(c: Case, extra: object = {}): SparseAttention {
  const a = new SparseAttention(c.heads, c.mode as 'all', c.L, c.bs, { ...c.options, backend: 'wasm', threads: 2, ...extra });
  made.push(a);
  return a;
}
afterAll(() => made.forEach((a) => a.dispose()));


describe('createTensor', () => {
  it('gives a zeroed tensor in the engine memory (shared where workers run)', () => {
    const a = instance(cases[0]);
    const t = a.createTensor([2, 3, 4]);
    expect(t.shape).toEqual([2, 3, 4]);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(t.data.length).toBe(24);
    expect(t.data.every((x) => x === 0)).toBe(true);
    expect(t.data.buffer.constructor.name).toBe('SharedArrayBuffer'); // Node: threaded engine
    expect(a.releaseTensor(t)).toBe(true);
    expect(a.releaseTensor(t)).toBe(false); // already given back
    expect(a.releaseTensor({ data: new Float32Array(3), shape: [1, 1, 3] })).toBe(false);
  });

  it('rejects bad shapes and non-tensors, naming the argument', () => {
    const a = instance(cases[0]);
    expect(() => a.createTensor([1, 0, 4])).toThrow(/shape\[1\] must be a positive integer \(got 0\)/);
    expect(() => a.createTensor([1, 2, 5])).toThrow(/nEmbd must be a multiple of kvHeads \(2: q's heads·headDim or k's kvHeads·headDim\)/);
    // grouped K/V heads: k and v have kvHeads·headDim columns, not a multiple of heads
    const g = new SparseAttention(4, 'all', undefined, 16, { backend: 'wasm', kvHeads: 1 });
    expect(g.createTensor([1, 2, 3]).shape).toEqual([1, 2, 3]);
    g.dispose();
    expect(() => a.createTensor([1, 2] as number[])).toThrow(/shape must be an array \[batch, nCtx, nEmbd\]/);
    expect(() => a.releaseTensor(null as never)).toThrow(/tensor must be a tensor from createTensor\(\) \(got null\)/);
    const d = new SparseAttention(2, 'all', undefined, 16, { backend: 'wasm' });
    d.dispose();
    expect(() => d.createTensor([1, 2, 4])).toThrow(/disposed/);
  });

  it('a tensor that does not fit is refused with the sizes; the instance stays usable', async () => {
    const c = cases[0];
    const a = instance(c);
    const { q, k, v } = inputs(c);
    await a.forward(q, k, v);
    const { faults } = __testing;
    faults.maxMemoryBytes = 64 << 20;
    try {
      expect(() => a.createTensor([1, 1 << 20, 32])).toThrow(/createTensor of 33554432 floats does not fit: .* at most 0\.0625 GiB is possible/);
    } finally {
      faults.maxMemoryBytes = null;
    }
    expectClose((await a.forward(q, k, v)).data, reference(c), 1e-5, 1e-4, describeCase(c));
  });

  it('reuses released memory: create/release cycles do not grow the engine', async () => {
    const a = instance(cases[0]);
    const shape = [2, 64, 32];
    const warm = a.createTensor(shape);
    a.releaseTensor(warm);
    const grown = () => __testing.engines().reduce((n, e) => n + e.memoryBytes, 0);
    const before = grown();
    for (let i = 0; i < 50; i++) {
      const ts = [a.createTensor(shape), a.createTensor(shape)];
      ts.forEach((t) => a.releaseTensor(t));
    }
    expect(grown()).toBe(before);
  });
});

describe('engine tensors and out give the same results as plain arrays', () => {
  for (const c of cases) {
    it(describeCase(c), async () => {
      const a = instance(c);
      const { q, k, v } = inputs(c);
      const plain = (await a.forward(q, k, v)).data;
      expectClose(plain, reference(c), 1e-5, 1e-4, describeCase(c));
      const [rq, rk, rv] = residentCopies(a, q.shape, [q, k, v]);
      const before = [rq, rk, rv].map((t) => t.data.slice());

      // engine inputs, fresh result
      expect((await a.forward(rq, rk, rv)).data).toEqual(plain);
      // engine inputs, engine out: written in place
      const ro = a.createTensor(q.shape);
      const r1 = await a.forward(rq, rk, rv, { out: ro.data });
      expect(r1.data).toBe(ro.data);
      expect(ro.data).toEqual(plain);
      // plain inputs, engine out; engine inputs, plain out
      const ro2 = a.createTensor(q.shape);
      expect((await a.forward(q, k, v, { out: ro2.data })).data).toEqual(plain);
      const po = new Float32Array(q.data.length).fill(7);
      const r2 = await a.forward(rq, k, rv, { out: po });
      expect(r2.data).toBe(po);
      expect(po).toEqual(plain);
      // forwardSync (its own engine): same values
      const po2 = new Float32Array(q.data.length);
      expect(a.forwardSync(rq, rk, rv, { out: po2 }).data).toBe(po2);
      expect(po2).toEqual(plain);
      // inputs never modified
      [rq, rk, rv].forEach((t, i) => expect(t.data).toEqual(before[i]));
      [rq, rk, rv, ro, ro2].forEach((t) => expect(a.releaseTensor(t)).toBe(true));
    });
  }

  it('engine tensors of one instance work in another sharing the engine, and after shape changes', async () => {
    const c1 = cases[2];
    const c2: Case = { ...c1, nCtx: 90, batch: 1 };
    const a = instance(c1);
    const b = instance(c1);
    for (const c of [c1, c2, c1]) {
      const { q, k, v } = inputs(c);
      const [rq, rk, rv] = residentCopies(a, q.shape, [q, k, v]);
      const out = a.createTensor(q.shape);
      await b.forward(rq, rk, rv, { out: out.data });
      expectClose(out.data, reference(c), 1e-5, 1e-4, describeCase(c));
      [rq, rk, rv, out].forEach((t) => a.releaseTensor(t));
    }
  });
});

describe('out option', () => {
  const c = cases[1];
  const { q, k, v } = inputs(c);
  const n = q.data.length;
  const bad: [string, unknown, RegExp][] = [
    ['wrong length', new Float32Array(n - 1), new RegExp(`out must be a Float32Array of ${n} floats .*\\(got Float32Array\\(${n - 1}\\)\\)`)],
    ['Float64Array', new Float64Array(n), /out must be a Float32Array of \d+ floats .*\(got Float64Array/],
    ['an array', [1, 2], /out must be a Float32Array/],
    ['q itself', q.data, /out must be memory apart from q\.data/],
    ['overlapping v', new Float32Array(v.data.buffer, 4, n - 1), /out must be a Float32Array/],
  ];
  for (const [what, out, re] of bad) {
    it(`rejects ${what}; nothing changes and the instance stays usable`, async () => {
      const a = instance(c);
      const copy = [q, k, v].map((t) => t.data.slice());
      await expect(a.forward(q, k, v, { out: out as Float32Array })).rejects.toThrow(re);
      expect(() => a.forwardSync(q, k, v, { out: out as Float32Array })).toThrow(re);
      [q, k, v].forEach((t, i) => expect(t.data).toEqual(copy[i]));
      expectClose((await a.forward(q, k, v)).data, reference(c), 1e-5, 1e-4, describeCase(c));
    });
  }

  it('rejects an out that overlaps k within one buffer', async () => {
    const a = instance(c);
    const shared = new Float32Array(2 * n);
    shared.set(k.data);
    const kk = { data: shared.subarray(0, n), shape: k.shape };
    await expect(a.forward(q, kk, v, { out: shared.subarray(n / 2, n / 2 + n) })).rejects.toThrow(/out must be memory apart from k\.data/);
    const r = await a.forward(q, kk, v, { out: shared.subarray(n, 2 * n) }); // adjacent, apart
    expectClose(r.data, reference(c), 1e-5, 1e-4, describeCase(c));
  });
});

describe('tensors made or released while calls are in flight', () => {
  it('tensors made during calls, released after them, leave no growing gap', async () => {
    const c: Case = { mode: 'all', bs: 32, batch: 2, nCtx: 600, heads: 2, headDim: 32 };
    const a = instance(c);
    const { q, k, v } = inputs(c);
    const memory = () => __testing.engines().reduce((n, e) => n + e.memoryBytes, 0);
    const during = __testing.counters.tensorsDuringCalls;
    let after5 = 0;
    for (let round = 0; round < 20; round++) {
      const p = a.forward(q, k, v);
      await new Promise((r) => setTimeout(r, 1)); // the workers are computing now
      const made = [a.createTensor(q.shape), a.createTensor(q.shape)];
      expectClose((await p).data, reference(c), 1e-5, 1e-4, describeCase(c));
      made.forEach((t) => a.releaseTensor(t));
      await a.forward(q, k, v); // the deferred frees have run
      if (round === 5) after5 = memory();
    }
    expect(__testing.counters.tensorsDuringCalls - during).toBeGreaterThan(10); // the path under test ran
    expect(memory()).toBe(after5);
  });

  it('a tensor created during a call is not written by it, and the call is right', async () => {
    const c: Case = { mode: 'all', bs: 32, batch: 2, nCtx: 300, heads: 4, headDim: 16 };
    const a = instance(c);
    const { q, k, v } = inputs(c);
    const [rq, rk, rv] = residentCopies(a, q.shape, [q, k, v]);
    const calls = [a.forward(rq, rk, rv), a.forward(q, k, v), a.forward(rq, rk, rv)];
    const fresh = Array.from({ length: 4 }, () => a.createTensor(q.shape));
    fresh.forEach((t, i) => t.data.fill(i + 1));
    for (const r of await Promise.all(calls)) expectClose(r.data, reference(c), 1e-5, 1e-4, describeCase(c));
    fresh.forEach((t, i) => expect(t.data.every((x) => x === i + 1)).toBe(true));
    // released after its calls settled: the region is reused, old results stay valid
    const r = await a.forward(rq, rk, rv);
    [rq, rk, rv].forEach((t) => a.releaseTensor(t));
    const reuse = a.createTensor(q.shape);
    expect(reuse.data.every((x) => x === 0)).toBe(true);
    expectClose(r.data, reference(c), 1e-5, 1e-4, describeCase(c));
  });
});

describe('auto and createTensor', () => {
  it("auto's CPU estimate counts no copy for tensors read and written in place", async () => {
    const a = new SparseAttention(4, 'local', 16, 16, { threads: 2 }); // backend 'auto'
    made.push(a);
    const shape = [1, 2048, 256];
    const plain = { data: new Float32Array(2048 * 256).fill(0.5), shape };
    await a.forward(plain, plain, plain);
    const r1 = a.lastRun!.reason;
    const [rq, rk, rv, ro] = [0, 1, 2, 3].map(() => a.createTensor(shape));
    rq.data.fill(0.5);
    await a.forward(rq, rk, rv, { out: ro.data });
    const r2 = a.lastRun!.reason;
    expect(a.lastRun!.backend).toBe('wasm');
    expect(r2).toMatch(/estimated on the CPU \(2 threads, 4 of q, k, v, out in place\)/);
    const ms = (r: string) => Number(/([\d.]+) ms estimated on the CPU/.exec(r)![1]);
    expect(ms(r2)).toBeLessThan(ms(r1));
    [rq, rk, rv, ro].forEach((t) => a.releaseTensor(t));
  });
});
