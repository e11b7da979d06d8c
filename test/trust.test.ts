// Calls own their inputs (issue 15, defects 1, 2, 7, 8): q, k, v are taken once, at the
// call; a caller that swaps, detaches or resizes them afterwards gets either the result for
// what it passed or a clear ArgumentError, never a result computed from other memory; a
// failed call leaves the engine usable for every instance sharing it. Errors carry stable
// codes; ONNX Runtime tensors are accepted; onProgress reports while a call computes.
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import * as lib from '../dist/index.js';
import { describeCase, expectClose, inputs, reference, type Case } from './helpers.js';

const { SparseAttention, SparseAttentionError } = lib;
const c: Case = { mode: 'local', L: 40, bs: 16, batch: 2, nCtx: 300, heads: 3, headDim: 20 };
const shape: [number, number, number] = [c.batch, c.nCtx, c.heads * c.headDim];
const TOL = [1e-5, 1e-4] as const;
const make = () => new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads: 2 });
const detach = (a: Float32Array) => structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });

async function expectCode(p: Promise<unknown> | (() => unknown), code: string, message?: RegExp): Promise<Error> {
  let err: unknown = null;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ${code} error`).toBeInstanceOf(SparseAttentionError);
  expect((err as { code: string }).code).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
  return err as Error;
}

describe('inputs are taken once, at the call', () => {
  const a = make();
  const b = make(); // shares a's engine (and its memory)
  afterAll(() => { a.dispose(); b.dispose(); });

  it('q detached after forward() returned: ERR_ARGUMENT naming q.data; both instances stay usable', async () => {
    const { q, k, v } = inputs(c, 1);
    const call = a.forward(q, k, v);
    detach(q.data);
    await expectCode(call, 'ERR_ARGUMENT', /q\.data changed after the call was made.*detached/);
    for (const attn of [a, b]) {
      const t = inputs(c, 2);
      const out = await attn.forward(t.q, t.k, t.v);
      expectClose(out.data, reference(c, 2), ...TOL, `after a failed call ${describeCase(c)}`);
    }
  });

  it('v and out detached while the call waits its turn: ERR_ARGUMENT; the queue behind it runs', async () => {
    const t1 = inputs(c, 3), t2 = inputs(c, 4), t3 = inputs(c, 5);
    const out2 = new Float32Array(t2.q.data.length);
    const first = a.forward(t1.q, t1.k, t1.v);
    const second = b.forward(t2.q, t2.k, t2.v, { out: out2 });
    const third = a.forward(t3.q, t3.k, t3.v);
    detach(out2);
    expectClose((await first).data, reference(c, 3), ...TOL, 'first');
    await expectCode(second, 'ERR_ARGUMENT', /out changed after the call was made/);
    expectClose((await third).data, reference(c, 5), ...TOL, 'third');
  });

  it('tensor objects reused after the call (data swapped, shape edited) do not change it', async () => {
    const { q, k, v } = inputs(c, 6);
    const other = inputs({ ...c, nCtx: c.nCtx * 2 }, 7);
    const call = a.forward(q, k, v);
    v.data = other.v.data; // a larger array of another call
    k.data = other.k.data;
    (q.shape as number[])[1] = 1;
    const out = await call;
    expect(out.shape).toEqual(shape);
    expect(out.dims).toEqual(shape);
    expectClose(out.data, reference(c, 6), ...TOL, 'reused tensor objects');
  });

  it('no call reads memory it did not write: engine memory filled with a sentinel first', async () => {
    // A createTensor() the size of a whole call's work area, filled with NaN and released:
    // the next calls lay out their work area over it.
    const big = a.createTensor([4, c.nCtx, 4 * shape[2]]);
    big.data.fill(NaN);
    a.releaseTensor(big);
    const { q, k, v } = inputs(c, 8);
    const call = b.forward(q, k, v);
    v.data = new Float32Array(v.data.length * 4).fill(NaN);
    const out = await call;
    expectClose(out.data, reference(c, 8), ...TOL, 'over a NaN sentinel');
    expect(out.data.some(Number.isNaN)).toBe(false);
  });

  it('a throwing getter, a non-signal, a non-array shape: ERR_ARGUMENT naming the argument', async () => {
    const { q, k, v } = inputs(c, 9);
    const trap = { get data(): Float32Array { throw new TypeError('boom'); }, shape };
    await expectCode(a.forward(trap as never, k, v), 'ERR_ARGUMENT', /q\.data could not be read \(boom\)/);
    await expectCode(a.forward(q, k, v, { signal: {} as AbortSignal }), 'ERR_ARGUMENT', /signal must be an AbortSignal/);
    await expectCode(a.forward(q, k, v, { sginal: 1 } as never), 'ERR_ARGUMENT', /forward options\.sginal is not an option; did you mean 'signal'\?/);
    await expectCode(a.forward({ data: q.data, shape: 'x' } as never, k, v), 'ERR_ARGUMENT', /q\.shape must be an array/);
    const out = await a.forward(q, k, v);
    expectClose(out.data, reference(c, 9), ...TOL, 'after bad calls');
  });
});

describe('error classes and codes', () => {
  it('every error is a SparseAttentionError subclass with a stable code', async () => {
    const classes = ['ArgumentError', 'MemoryLimitError', 'UnsupportedError', 'DeviceLostError', 'AbortedError', 'DisposedError', 'WorkerError', 'StateError', 'KernelError'];
    for (const name of classes) expect((lib as Record<string, unknown>)[name], name).toBeTypeOf('function');
    const e1 = await expectCode(() => new SparseAttention(0, 'all'), 'ERR_ARGUMENT');
    expect(e1).toBeInstanceOf(lib.ArgumentError);
    const attn = make();
    const { q, k, v } = inputs(c, 10);
    const ac = new AbortController();
    const call = attn.forward(q, k, v, { signal: ac.signal });
    ac.abort(new Error('stop now'));
    const e2 = await expectCode(call, 'ERR_ABORTED', /stop now/);
    expect((e2.cause as Error).message).toBe('stop now');
    attn.dispose();
    await expectCode(attn.forward(q, k, v), 'ERR_DISPOSED');
    await expectCode(() => attn.plan(shape), 'ERR_DISPOSED');
  });
});

describe('ONNX Runtime tensors', () => {
  it('ort.Tensor in, and the result wraps back into an ort.Tensor', async () => {
    const attn = make();
    const { q, k, v } = inputs(c, 11);
    const t = (x: { data: Float32Array }) => new ort.Tensor('float32', x.data, shape);
    const out = await attn.forward(t(q), t(k), t(v));
    expectClose(out.data, reference(c, 11), ...TOL, 'ort tensors');
    const back = new ort.Tensor('float32', out.data, out.dims);
    expect(back.dims).toEqual(shape);
    expect(attn.forwardSync(t(q), t(k), t(v)).data).toEqual(out.data);
    await expectCode(attn.forward(new ort.Tensor('int32', new Int32Array(q.data.length), shape) as never, k, v), 'ERR_ARGUMENT', /q\.type must be 'float32' \(got 'int32'\)/);
    attn.dispose();
  });
});

describe('onProgress', () => {
  it('rises while a long call computes, at most ~20 times a second, and ends with 1', async () => {
    const big: Case = { mode: 'all', bs: 32, batch: 2, nCtx: 1024, heads: 4, headDim: 64 };
    const attn = new SparseAttention(big.heads, big.mode, undefined, big.bs, { backend: 'wasm', threads: 2 });
    const { q, k, v } = inputs(big, 12);
    await attn.forward(q, k, v); // workers up
    const seen: number[] = [];
    const at: number[] = [];
    await attn.forward(q, k, v, { onProgress: (f) => { seen.push(f); at.push(performance.now()); throw new Error('ignored'); } });
    expect(seen.at(-1)).toBe(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
    for (const f of seen) expect(f).toBeGreaterThan(0);
    // throttled: reports before the final 1 come at least ~50 ms apart (a loaded machine only widens the gaps)
    for (let i = 1; i < at.length - 1; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(45);
    attn.dispose();
  });
});

describe('a bundle without worker.js', () => {
  it('runs on the calling thread; lastRun.reason names the URL that failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sa-noworker-'));
    for (const f of ['index.js', 'index.js.map']) copyFileSync(new URL(`../dist/${f}`, import.meta.url), join(dir, f));
    const mod = (await import(join(dir, 'index.js'))) as typeof lib;
    const attn = new mod.SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads: 2 });
    const { q, k, v } = inputs(c, 13);
    const out = await attn.forward(q, k, v);
    expectClose(out.data, reference(c, 13), ...TOL, 'no worker.js');
    expect(attn.lastRun!.detail).toMatch(/1 thread$/);
    expect(attn.lastRun!.reason).toContain(`${new URL(`file://${dir}/worker.js`).href}`);
    expect(attn.lastRun!.reason).toMatch(/ran on the calling thread/);
    const again = await attn.forward(q, k, v);
    expect(again.data).toEqual(out.data);
    attn.dispose();
  });
});
