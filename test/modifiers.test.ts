// Score modifiers (scale, softcap, ALiBi, sinks) and lse: the float64 reference against
// hand-computed small cases, ALiBi's slopes against Press et al.'s published values, the
// options' bad values, and the entry points that take them on the CPU path. No GPU here:
// test/cpu-modifiers.test.ts and test/webgpu-modifiers.test.ts hold the kernels to the reference.
import { describe, expect, it } from 'vitest';
import { ArgumentError, SparseAttention, attentionReference } from '../dist/index.js';
import { alibiSlopes } from '../src/config-mods.js';

type T = { data: Float32Array; shape: [number, number, number] };
const t = (rows: number[][], batch = 1): T => {
  const n = rows.length / batch;
  return { data: Float32Array.from(rows.flat()), shape: [batch, n, rows[0].length] };
};
const close = (a: number, b: number, what: string) => {
  if (!(Math.abs(a - b) <= 1e-12 + 1e-12 * Math.abs(b))) throw new Error(`${what}: ${a} vs ${b}`);
};
/** softmax-weighted values and lse from final logits and a sink (natural log). */
const expected = (s: number[], v: number[], sink = -Infinity) => {
  const m = Math.max(...s);
  const w = s.map((x) => Math.exp(x - m));
  const sum = w.reduce((a, b) => a + b, 0);
  return { out: w.reduce((a, x, j) => a + x * v[j], 0) / (sum + Math.exp(sink - m)), lse: m + Math.log(sum) };
};

describe('ALiBi slopes (Press et al., attention_with_linear_biases get_slopes)', () => {
  it('8 heads: 2^-1 … 2^-8', () => {
    expect(Array.from(alibiSlopes(8))).toEqual([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625]);
  });
  it('12 heads: the 8-head slopes, then every other slope of 16 heads (2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5)', () => {
    const published = [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125, 0.00390625, 0.7071067811865476, 0.35355339059327373, 0.17677669529663687, 0.08838834764831843];
    alibiSlopes(12).forEach((x, i) => close(x, published[i], `slope ${i}`));
  });
  it('16 heads start at 2^-0.5; 1 head is 2^-8; 6 heads: 4 of 4, then 2 of 8', () => {
    close(alibiSlopes(16)[0], Math.SQRT1_2, '16[0]');
    close(alibiSlopes(16)[15], 2 ** -8, '16[15]');
    expect(Array.from(alibiSlopes(1))).toEqual([2 ** -8]);
    const s6 = Array.from(alibiSlopes(6));
    [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125].forEach((x, i) => close(s6[i], x, `6[${i}]`));
  });
});

describe('the reference applies each modifier by its formula', () => {
  // one head of dim 1: score_ij = scale · q_i · k_j
  const k = t([[1], [2], [-1]]);
  const v = t([[10], [20], [30]]);
  const q = t([[0.5], [1], [3]]);
  const rowOf = (r: ReturnType<typeof attentionReference>, i: number) => ({ out: r.data[i], lse: r.lse[i] });

  it('scale multiplies q·k (default 1/sqrt(headDim))', () => {
    const r = attentionReference(q, k, v, 1, 'all', undefined, 8, { causal: false, scale: 0.5 });
    for (let i = 0; i < 3; i++) {
      const e = expected([1, 2, -1].map((kj) => 0.5 * q.data[i] * kj), [10, 20, 30]);
      close(rowOf(r, i).out, e.out, `out ${i}`);
      close(rowOf(r, i).lse, e.lse, `lse ${i}`);
    }
  });

  it('softcap: cap·tanh(s / cap) after scaling (Gemma 2)', () => {
    const r = attentionReference(q, k, v, 1, 'all', undefined, 8, { causal: false, scale: 2, softcap: 1.5 });
    const e = expected([1, 2, -1].map((kj) => 1.5 * Math.tanh((2 * 3 * kj) / 1.5)), [10, 20, 30]);
    close(r.data[2], e.out, 'out');
    close(r.lse[2], e.lse, 'lse');
  });

  it('alibi: −slope·|i − j| (causal: query 2 sees keys 0, 1, 2 at distances 2, 1, 0)', () => {
    const r = attentionReference(q, k, v, 1, 'all', undefined, 8, { alibi: new Float32Array([0.75]) });
    const e = expected([1, 2, -1].map((kj, j) => 3 * kj - 0.75 * (2 - j)), [10, 20, 30]);
    close(r.data[2], e.out, 'out');
    close(r.lse[2], e.lse, 'lse');
    // non-causal: the distance is symmetric
    const n = attentionReference(q, k, v, 1, 'all', undefined, 8, { causal: false, alibi: new Float32Array([0.75]) });
    const e0 = expected([1, 2, -1].map((kj, j) => 0.5 * kj - 0.75 * j), [10, 20, 30]);
    close(n.data[0], e0.out, 'non-causal out');
  });

  it('alibi: true uses the slopes of the head count; with GQA each query head has its own', () => {
    const q2 = t([[1, 0.5]]);
    const k2 = t([[1], [2], [-1]]);
    const r = attentionReference(q2, k2, v, 2, 'all', undefined, 8, { kvHeads: 1, alibi: true });
    const slopes = alibiSlopes(2); // 2^-4, 2^-8
    for (const h of [0, 1]) {
      // one query aligned bottom-right: position 2
      const e = expected([1, 2, -1].map((kj, j) => q2.data[h] * kj - slopes[h] * (2 - j)), [10, 20, 30]);
      close(r.data[h], e.out, `head ${h}`);
      close(r.lse[h], e.lse, `lse ${h}`);
    }
  });

  it('sinks: exp(sink) joins the denominator only; lse leaves it out', () => {
    const r = attentionReference(q, k, v, 1, 'all', undefined, 8, { sinks: new Float32Array([1.25]) });
    for (let i = 0; i < 3; i++) {
      const e = expected([1, 2, -1].slice(0, i + 1).map((kj) => q.data[i] * kj), [10, 20, 30], 1.25);
      close(r.data[i], e.out, `out ${i}`);
      close(r.lse[i], e.lse, `lse ${i}`);
    }
  });

  it('a row with no allowed key stays zeros with lse −Infinity, whatever its sink', () => {
    const r = attentionReference(q, k, v, 1, 'all', undefined, 8, { sinks: new Float32Array([3]), softcap: 2 }, { keyLengths: [0] });
    expect(Array.from(r.data)).toEqual([0, 0, 0]);
    expect(Array.from(r.lse)).toEqual([-Infinity, -Infinity, -Infinity]);
  });

  it('all together in order: scale, softcap, ALiBi, sink; cross-attention positions bottom-right', () => {
    const q1 = t([[3]]);
    const opts = { scale: 0.7, softcap: 1.1, alibi: new Float32Array([0.3]), sinks: new Float32Array([-0.4]) };
    const r = attentionReference(q1, k, v, 1, 'local', 2, 8, opts);
    // local window 2, query at position 2: keys 1, 2
    // (slopes and sinks are Float32Arrays: their values as stored)
    const s = [2, -1].map((kj, j) => 1.1 * Math.tanh((0.7 * 3 * kj) / 1.1) - Math.fround(0.3) * (1 - j));
    const e = expected(s, [20, 30], Math.fround(-0.4));
    close(r.data[0], e.out, 'out');
    close(r.lse[0], e.lse, 'lse');
  });
});

describe('bad values are ArgumentErrors naming the option', () => {
  const make = (o: Record<string, unknown>) => () => new SparseAttention(2, 'all', undefined, 16, o as never);
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['softcap −1', { softcap: -1 }, /options\.softcap must be a positive finite number .*\(got -1\)/],
    ['softcap 0', { softcap: 0 }, /options\.softcap must be a positive finite number/],
    ['softcap NaN', { softcap: NaN }, /options\.softcap must be a positive finite number .*\(got NaN\)/],
    ['softcap string', { softcap: '30' }, /options\.softcap must be a positive finite number/],
    ['scale 0', { scale: 0 }, /options\.scale must be a positive finite number/],
    ['scale Infinity', { scale: Infinity }, /options\.scale must be a positive finite number .*\(got Infinity\)/],
    ['alibi of the wrong length', { alibi: new Float32Array(3) }, /options\.alibi must be true or a Float32Array of one slope per head \(2\)/],
    ['alibi NaN slope', { alibi: new Float32Array([0.5, NaN]) }, /options\.alibi\[1\] must be a finite slope \(got NaN\)/],
    ['alibi a string', { alibi: 'yes' }, /options\.alibi must be true, false or a Float32Array/],
    ['alibi a plain array', { alibi: [0.5, 0.25] }, /options\.alibi must be true, false or a Float32Array/],
    ['sinks of the wrong length', { sinks: new Float32Array(1) }, /options\.sinks must be a Float32Array of one logit per head \(2\)/],
    ['sinks NaN', { sinks: new Float32Array([0, NaN]) }, /options\.sinks\[1\] must be a finite logit \(got NaN\)/],
    ['sinks a plain array', { sinks: [0, 0] }, /options\.sinks must be a Float32Array/],
  ];
  it.each(bad)('%s', (_name, o, re) => {
    expect(make(o)).toThrow(ArgumentError);
    expect(make(o)).toThrow(re);
  });

  it('lse of the wrong length or type', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'wasm', threads: 1 });
    const x = { data: new Float32Array(1 * 5 * 4), shape: [1, 5, 4] as [number, number, number] };
    await expect(attn.forward(x, x, x, { lse: new Float32Array(9) })).rejects.toThrow(/lse must be a Float32Array of batch·heads·nQ = 10 floats \(got Float32Array\(9\)\)/);
    await expect(attn.forward(x, x, x, { lse: new Float64Array(10) as never })).rejects.toThrow(ArgumentError);
    attn.dispose();
  });
});

describe("backend 'wasm' runs every entry point with the modifiers (capabilities.modifiers)", () => {
  const x = { data: Float32Array.from({ length: 1 * 5 * 4 }, (_, i) => Math.sin(i)), shape: [1, 5, 4] as [number, number, number] };
  for (const [name, o] of [['softcap', { softcap: 5 }], ['alibi', { alibi: true }], ['sinks', { sinks: new Float32Array([0.5, -1]) }], ['scale', { scale: 0.2 }]] as const) {
    it(`${name}: forward, forwardSync (with lse) and plan() on the CPU, as the reference`, async () => {
      const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'wasm', threads: 1, ...o });
      const ref = attentionReference(x, x, x, 2, 'all', undefined, 16, o);
      expect(attn.plan([1, 5, 4]).backend).toBe('wasm');
      const out = await attn.forward(x, x, x);
      const lse = new Float32Array(10);
      const sync = attn.forwardSync(x, x, x, { lse });
      for (let i = 0; i < 20; i++) {
        expect(Math.abs(out.data[i] - ref.data[i])).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(ref.data[i]));
        expect(Math.abs(sync.data[i] - ref.data[i])).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(ref.data[i]));
      }
      for (let i = 0; i < 10; i++) expect(Math.abs(lse[i] - ref.lse[i])).toBeLessThanOrEqual(2e-5 + 1e-5 * Math.abs(ref.lse[i]));
      attn.dispose();
    });
  }
  it('forwardSync checks lse like forward', () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'wasm' });
    expect(() => attn.forwardSync(x, x, x, { lse: new Float32Array(9) })).toThrow(/lse must be a Float32Array of batch·heads·nQ = 10 floats/);
    attn.dispose();
  });
  it('a CPU KV cache call with a modifier and lse runs', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'wasm', threads: 1, softcap: 3 });
    const cache = attn.createCache({ batch: 1, capacity: 8 });
    const lse = new Float32Array(10);
    const out = await attn.forward(x, x, x, { cache, lse });
    const ref = attentionReference(x, x, x, 2, 'all', undefined, 16, { softcap: 3 });
    for (let i = 0; i < 20; i++) expect(Math.abs(out.data[i] - ref.data[i])).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(ref.data[i]));
    for (let i = 0; i < 10; i++) expect(Math.abs(lse[i] - ref.lse[i])).toBeLessThanOrEqual(2e-5 + 1e-5 * Math.abs(ref.lse[i]));
    attn.dispose();
  });
});
