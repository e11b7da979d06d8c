// Bad input: every rejection is an Error naming the argument, the value and the
// expectation; nothing else changes and the instance stays usable.
import { afterAll, describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { expectClose, inputs, reference, type Case } from './helpers.js';

const ok: Case = { mode: 'local', L: 4, bs: 16, batch: 2, nCtx: 20, heads: 2, headDim: 4 };

describe('constructor arguments', () => {
  const bad: [string, () => unknown, RegExp][] = [
    ['heads 0', () => new SparseAttention(0, 'all'), /heads must be a positive integer \(got 0\)/],
    ['heads 2.5', () => new SparseAttention(2.5, 'all'), /heads must be a positive integer \(got 2\.5\)/],
    ['heads -1', () => new SparseAttention(-1, 'all'), /heads must be a positive integer \(got -1\)/],
    ['heads "4"', () => new SparseAttention('4' as unknown as number, 'all'), /heads must be a positive integer \(got '4'\)/],
    ['unknown mode', () => new SparseAttention(2, 'dense' as 'all'), /attnMode must be one of 'all', 'local', 'strided', 'fixed', 'longformer', 'bigbird', 'custom' \(got 'dense'\)/],
    ['local without L', () => new SparseAttention(2, 'local'), /localAttnCtx must be a positive integer for mode 'local' \(got undefined\)/],
    ['local L 0', () => new SparseAttention(2, 'local', 0), /localAttnCtx must be a positive integer for mode 'local' \(got 0\)/],
    ['strided L -3', () => new SparseAttention(2, 'strided', -3), /localAttnCtx must be a positive integer for mode 'strided' \(got -3\)/],
    ['strided L 1.5', () => new SparseAttention(2, 'strided', 1.5), /localAttnCtx must be a positive integer for mode 'strided' \(got 1\.5\)/],
    ['all L NaN', () => new SparseAttention(2, 'all', NaN), /localAttnCtx must be a positive integer or undefined for mode 'all' \(got NaN\)/],
    ['blocksize 24', () => new SparseAttention(2, 'all', undefined, 24), /blocksize must be one of 8, 16, 32, 64, 128 \(got 24\)/],
    ['blocksize 0', () => new SparseAttention(2, 'all', undefined, 0), /blocksize must be one of 8, 16, 32, 64, 128 \(got 0\)/],
    ['fixed L not multiple of bs', () => new SparseAttention(2, 'fixed', 40, 32), /localAttnCtx must be a multiple of blocksize \(32\) for mode 'fixed' \(got 40\)/],
    ['fixed vertsize', () => new SparseAttention(2, 'fixed', 96, 32, { vertsize: 2 }), /options\.vertsize must be a divisor of localAttnCtx \/ blocksize \(3\) for mode 'fixed' \(got 2\)/],
    ['fixed numVerts too many', () => new SparseAttention(4, 'fixed', 64, 32, { numVerts: 4 }), /options\.numVerts must be at most localAttnCtx \/ blocksize \/ vertsize \(2\) for mode 'fixed' \(got 4\)/],
    ['fixed numVerts vs heads', () => new SparseAttention(3, 'fixed', 64, 32, { numVerts: 2 }), /options\.numVerts must be a divisor of heads \(3\) for mode 'fixed' \(got 2\)/],
    ['fixed numVerts 0', () => new SparseAttention(2, 'fixed', 64, 32, { numVerts: 0 }), /options\.numVerts must be a positive integer \(got 0\)/],
    ['numVerts outside fixed', () => new SparseAttention(2, 'all', undefined, 32, { numVerts: 2 }), /options\.numVerts must be undefined for mode 'all'/],
    ['causal "yes"', () => new SparseAttention(2, 'all', undefined, 32, { causal: 'yes' as unknown as boolean }), /options\.causal must be a boolean \(got 'yes'\)/],
    ['backend gpu', () => new SparseAttention(2, 'all', undefined, 32, { backend: 'gpu' as 'wasm' }), /options\.backend must be one of 'auto', 'wasm', 'webgpu' \(got 'gpu'\)/],
    ['threads 0', () => new SparseAttention(2, 'all', undefined, 32, { threads: 0 }), /options\.threads must be a positive integer \(got 0\)/],
    ['webgpu.scanV "no"', () => new SparseAttention(2, 'all', undefined, 32, { webgpu: { scanV: 'no' as unknown as boolean } }), /options\.webgpu\.scanV must be a boolean \(got 'no'\)/],
    ['webgpu.variant unknown', () => new SparseAttention(2, 'all', undefined, 32, { webgpu: { variant: 'bsattn_fwd_f32_q96_k64__subgroups' } }), /options\.webgpu\.variant must be a kernel variant's name/],
    ['webgpu.variant not a string', () => new SparseAttention(2, 'all', undefined, 32, { webgpu: { variant: { bm: 64 } as never } }), /options\.webgpu\.variant must be a kernel variant's name \(src\/backends\/webgpu\/variants\.ts\) \(got an object\)/],
    ['custom without layout', () => new SparseAttention(2, 'custom'), /options\.layout must be a block layout/],
    ['custom ragged layout', () => new SparseAttention(2, 'custom', undefined, 16, { layout: [[1, 0], [1]] }), /options\.layout\[1\] must be a row of 2 entries/],
    ['custom per-head count', () => new SparseAttention(3, 'custom', undefined, 16, { layout: [[[1]], [[1]]] }), /options\.layout must be one matrix per head \(3\)/],
    ['layout outside custom', () => new SparseAttention(2, 'all', undefined, 16, { layout: [[1]] }), /options\.layout must be undefined for mode 'all'/],
    ['mask not a function', () => new SparseAttention(2, 'custom', undefined, 16, { layout: [[1]], mask: 3 as never }), /options\.mask must be a function/],
    ['options not an object', () => new SparseAttention(2, 'all', undefined, 32, 5 as never), /options must be an object or undefined \(got 5\)/],
    ['unknown option thread', () => new SparseAttention(2, 'all', undefined, 32, { thread: 4 } as never), /options\.thread is not an option; did you mean 'threads'\?/],
    ['dtype not a storage type', () => new SparseAttention(2, 'all', undefined, 32, { dtype: 'bfloat16' } as never), /options\.dtype must be 'float32' or 'float16'/],
    ['threads 1e6', () => new SparseAttention(2, 'all', undefined, 32, { threads: 1e6 }), /options\.threads must be at most 64 .*\(got 1000000\)/],
    ["layout entry '1'", () => new SparseAttention(2, 'custom', undefined, 16, { layout: [[1, 0], ['1', 1]] as never }), /options\.layout\[1\]\[0\] must be 0, 1, true or false \(got '1'\)/],
  ];
  it.each(bad)('%s', (_name, make, message) => {
    expect(make).toThrow(Error);
    expect(make).toThrow(message);
  });
});

describe('forward inputs', () => {
  const attn = new SparseAttention(ok.heads, ok.mode, ok.L, ok.bs, { backend: 'wasm', threads: 2 });
  afterAll(() => attn.dispose());
  const { q, k, v } = inputs(ok);
  const f32 = (n: number) => new Float32Array(n);

  const bad: [string, () => unknown[], RegExp][] = [
    ['q.data too short', () => [{ data: f32(10), shape: q.shape }, k, v], /q\.data\.length must be 320 for shape \[2, 20, 8\] \(got 10\)/],
    ['k width differs', () => [q, { data: f32(2 * 20 * 6), shape: [2, 20, 6] }, v], /k\.shape must be \[2, nK, 8\] \(q's batch, any nK, kvHeads · headDim\) \(got \[2,20,6\]\)/],
    ['k batch differs', () => [q, { data: f32(20 * 8), shape: [1, 20, 8] }, v], /k\.shape must be \[2, nK, 8\]/],
    ['v differs from k', () => [q, { data: f32(2 * 21 * 8), shape: [2, 21, 8] }, v], /v\.shape must be equal to k\.shape \[2, 21, 8\] \(got \[2,20,8\]\)/],
    ['zero size', () => [{ data: f32(0), shape: [2, 0, 8] }, k, v], /q\.shape\[1\] must be a positive integer \(got 0\)/],
    ['negative size', () => [{ data: f32(0), shape: [-2, 20, 8] }, k, v], /q\.shape\[0\] must be a positive integer \(got -2\)/],
    ['non-integer size', () => [{ data: f32(0), shape: [2, 20.5, 8] }, k, v], /q\.shape\[1\] must be a positive integer \(got 20\.5\)/],
    ['2-D shape', () => [{ data: f32(320), shape: [20, 8] }, k, v], /q\.shape must be an array \[batch, nCtx, nEmbd\] \(got \[20,8\]\)/],
    ['nEmbd % heads', () => {
      const t = { data: f32(2 * 20 * 7), shape: [2, 20, 7] };
      return [t, t, t];
    }, /nEmbd must be a multiple of heads \(2\); the shape is \[2, 20, 7\] \(got 7\)/],
    ['Float64Array', () => [{ data: new Float64Array(320), shape: q.shape }, k, v], /q\.data must be a Float32Array \(got Float64Array\(320\)\)/],
    ['plain array', () => [{ data: [1, 2, 3], shape: q.shape }, k, v], /q\.data must be a Float32Array \(got \[1,2,3\]\)/],
    ['missing tensor', () => [q, undefined, v], /k must be a tensor \{ data: Float32Array, shape: \[batch, nCtx, nEmbd\] \} or an ONNX Runtime tensor \{ type: 'float32', dims, data \} \(got undefined\)/],
    ['detached buffer', () => {
      const data = q.data.slice();
      structuredClone(data.buffer, { transfer: [data.buffer] });
      return [{ data, shape: q.shape }, k, v];
    }, /q\.data\.length must be 320 for shape \[2, 20, 8\] \(its buffer is detached\) \(got 0\)/],
  ];

  it.each(bad)('%s: forward rejects, forwardSync throws, the instance stays usable', async (_name, args, message) => {
    const [a, b, c] = args() as Parameters<SparseAttention['forward']>;
    await expect(attn.forward(a, b, c)).rejects.toThrow(message);
    expect(() => attn.forwardSync(a, b, c)).toThrow(message);
    const out = await attn.forward(q, k, v);
    expectClose(out.data, reference(ok), 1e-5, 1e-4, 'after a rejected call');
  });

  it('rejects bad keyLengths', async () => {
    await expect(attn.forward(q, k, v, { keyLengths: [3] })).rejects.toThrow(/keyLengths must be an array of 2 lengths \(one per batch item\) \(got \[3\]\)/);
    await expect(attn.forward(q, k, v, { keyLengths: [3, 21] })).rejects.toThrow(/keyLengths\[1\] must be an integer in \[0, 20\] \(got 21\)/);
  });

  it('rejects plan() of a bad shape', () => {
    expect(() => attn.plan([2, 0, 8])).toThrow(/shape\[1\] must be a positive integer \(got 0\)/);
    expect(() => attn.plan([2, 10, 7])).toThrow(/nEmbd must be a multiple of heads \(2\)/);
  });

  it('never writes to its inputs and never aliases them', async () => {
    const before = [q.data.slice(), k.data.slice(), v.data.slice()];
    const out = await attn.forward(q, k, v);
    const sync = attn.forwardSync(q, k, v);
    expect(q.data).toEqual(before[0]);
    expect(k.data).toEqual(before[1]);
    expect(v.data).toEqual(before[2]);
    for (const o of [out.data, sync.data]) for (const t of [q.data, k.data, v.data]) expect(o.buffer).not.toBe(t.buffer);
  });

  it('q, k, v as one tensor or as views into one buffer: right, unchanged, output in its own plain buffer', async () => {
    // one buffer holding q, k, v back to back, at unaligned offsets
    const n = q.data.length;
    const shared = new Float32Array(3 * n + 3);
    shared.set(q.data, 1);
    shared.set(k.data, n + 2);
    shared.set(v.data, 2 * n + 3);
    const view = (at: number) => ({ data: shared.subarray(at, at + n), shape: q.shape });
    const snapshot = shared.slice();
    for (const sync of [false, true]) {
      const args = [view(1), view(n + 2), view(2 * n + 3)] as const;
      const out = sync ? attn.forwardSync(...args) : await attn.forward(...args);
      expectClose(out.data, reference(ok), 1e-5, 1e-4, `views of one buffer${sync ? ' (sync)' : ''}`);
      expect(shared).toEqual(snapshot);
      expect(out.data.buffer).not.toBe(shared.buffer);
      // not a view of the engine's shared wasm memory: later calls cannot change it
      expect(out.data.buffer instanceof ArrayBuffer && out.data.byteOffset === 0 && out.data.buffer.byteLength === out.data.byteLength).toBe(true);
      const kept = out.data.slice();
      await attn.forward(k, q, v);
      expect(out.data).toEqual(kept);
      out.data.fill(7); // writing to the result touches nothing else
      expect(shared).toEqual(snapshot);
    }
    // the same tensor as q, k and v
    const same = q.data.slice();
    const out = await attn.forward(q, q, q);
    expect(q.data).toEqual(same);
    expect(out.data.buffer).not.toBe(q.data.buffer);
  });
});

describe('after dispose', () => {
  it('every call throws, dispose is idempotent', async () => {
    const attn = new SparseAttention(ok.heads, ok.mode, ok.L, ok.bs, { backend: 'wasm' });
    const { q, k, v } = inputs(ok);
    await attn.forward(q, k, v);
    attn.dispose();
    attn.dispose();
    await expect(attn.forward(q, k, v)).rejects.toThrow(/this instance was disposed/);
    expect(() => attn.forwardSync(q, k, v)).toThrow(/this instance was disposed/);
    expect(() => attn.plan(q.shape)).toThrow(/this instance was disposed/);
  });
});

describe('non-finite inputs propagate like the reference', () => {
  const c: Case = { mode: 'all', bs: 16, batch: 1, nCtx: 40, heads: 2, headDim: 8 };
  const poison: [string, (t: ReturnType<typeof inputs>) => void][] = [
    ['NaN in q row 5', (t) => { t.q.data[5 * 16 + 1] = NaN; }],
    ['Infinity in k row 7', (t) => { t.k.data[7 * 16 + 2] = Infinity; }],
    ['NaN in v row 20 (rows < 20 must stay finite)', (t) => { t.v.data[20 * 16 + 3] = NaN; }],
    ['-Infinity in v row 3', (t) => { t.v.data[3 * 16 + 9] = -Infinity; }],
  ];
  for (const threads of [1, 2]) {
    it.each(poison)(`%s (${threads} thread(s))`, async (_name, poisonIt) => {
      const t = inputs(c);
      poisonIt(t);
      const { attentionReference } = await import('../dist/index.js');
      const ref = attentionReference(t.q, t.k, t.v, c.heads, c.mode, undefined, c.bs).data;
      const attn = new SparseAttention(c.heads, c.mode, undefined, c.bs, { backend: 'wasm', threads });
      const out = await attn.forward(t.q, t.k, t.v);
      attn.dispose();
      expect(ref.some((x) => !Number.isFinite(x))).toBe(true);
      expectClose(out.data, ref, 1e-5, 1e-4, 'non-finite');
      for (let i = 0; i < out.data.length; i++) expect(Number.isNaN(out.data[i])).toBe(Number.isNaN(ref[i]));
    });
  }
});
