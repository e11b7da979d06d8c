// Limits of the CPU path: a call whose linear memory would pass the wasm32 ceiling (4 GiB)
// is split by batch item, then by head, and computed right; one that cannot be split (a
// single batch item × head too large) is rejected before any work or allocation, with an
// error that says the limit and the size asked for. The ceiling is lowered through the
// test-only hook __testing.faults.maxMemoryBytes (test/internal.ts) so that splitting runs on small shapes;
// the real 4 GiB case uses lazily zeroed inputs and must not grow memory. An AbortSignal
// stops a huge call promptly.
import { afterEach, describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { __testing } from './internal.js';
import { describeCase, expectClose, inputs, reference, type Case } from './helpers.js';
import { cpuMs, nextTurn, track } from './settle.js';

const { faults } = __testing;
afterEach(() => {
  faults.maxMemoryBytes = null;
});

const memory = () => Math.max(0, ...__testing.engines().map((e) => e.memoryBytes));

describe('calls larger than the memory ceiling are split', () => {
  const cases: [string, Case, number][] = [
    ['by batch', { mode: 'all', bs: 16, batch: 5, nCtx: 300, heads: 2, headDim: 16 }, 400_000],
    ['by head', { mode: 'local', L: 20, bs: 16, batch: 1, nCtx: 700, heads: 5, headDim: 12 }, 250_000],
    ['by batch then head, strided, key lengths', { mode: 'strided', L: 7, bs: 16, batch: 3, nCtx: 500, heads: 4, headDim: 9, keyLengths: [500, 0, 213] }, 200_000],
    ['fixed, several patterns', { mode: 'fixed', L: 64, bs: 16, batch: 2, nCtx: 400, heads: 4, headDim: 8, options: { numVerts: 2, vertsize: 2 } }, 150_000],
  ];
  for (const sync of [false, true]) {
    it.each(cases)(`%s${sync ? ' (forwardSync)' : ' (forward, 2 threads)'}`, async (_name, c, cap) => {
      const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads: 2, ...c.options });
      const { q, k, v } = inputs(c);
      const need = 6 * q.data.length * 4; // q k v o + packed K V
      expect(need, 'the case must need more than the cap').toBeGreaterThan(cap);
      faults.maxMemoryBytes = cap;
      const out = sync ? attn.forwardSync(q, k, v, { keyLengths: c.keyLengths }) : await attn.forward(q, k, v, { keyLengths: c.keyLengths });
      expectClose(out.data, reference(c), 1e-5, 1e-4, `split ${describeCase(c)} cap ${cap}`);
      expect(memory()).toBeLessThanOrEqual(cap + 65536); // grown in whole 64 KiB pages
      attn.dispose();
    });
  }
});

describe('calls that cannot be split are rejected before any work', () => {
  it('one batch item × head over a lowered ceiling: the error says the limit and the size', async () => {
    const c: Case = { mode: 'local', L: 8, bs: 16, batch: 1, nCtx: 5000, heads: 1, headDim: 16 };
    const attn = new SparseAttention(1, 'local', 8, 16, { backend: 'wasm', threads: 2 });
    const { q, k, v } = inputs(c);
    const tiny = inputs({ ...c, nCtx: 3 });
    await attn.forward(tiny.q, tiny.k, tiny.v); // engines and memory exist before
    attn.forwardSync(tiny.q, tiny.k, tiny.v);
    const before = memory();
    faults.maxMemoryBytes = 100_000;
    const message = /SparseAttention: a call of shape \[1, 5000, 16\] needs 0\.\d{4} GiB \((\d+) bytes\) of WebAssembly memory; wasm32 allows at most 0\.0001 GiB \(100000 bytes\)/;
    await expect(attn.forward(q, k, v)).rejects.toThrow(message);
    expect(() => attn.forwardSync(q, k, v)).toThrow(message);
    expect(memory()).toBe(before);
    faults.maxMemoryBytes = null;
    expectClose((await attn.forward(q, k, v)).data, reference(c), 1e-5, 1e-4, 'after the rejection');
    attn.dispose();
  });

  it('a real > 4 GiB call ([1, 2^22, 64], one head): rejected before any memory grows', async () => {
    const nCtx = 2 ** 22;
    const n = nCtx * 64; // 1 GiB per tensor; zeroed lazily by the OS, never touched here
    const t = () => ({ data: new Float32Array(n), shape: [1, nCtx, 64] });
    const q = t();
    const attn = new SparseAttention(1, 'local', 16, 32, { backend: 'wasm', threads: 2 });
    const tiny = { data: new Float32Array(64), shape: [1, 1, 64] };
    await attn.forward(tiny, tiny, tiny); // the engine exists before
    const rss0 = process.memoryUsage().rss;
    const mem0 = memory();
    const err = await attn.forward(q, q, q).then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/a call of shape \[1, 4194304, 64\] needs \d+\.\d\d GiB \((\d+) bytes\) of WebAssembly memory; wasm32 allows at most 4\.00 GiB \(4294967296 bytes\)/);
    const needed = Number(/\((\d+) bytes\)/.exec(err!.message)![1]);
    expect(needed).toBeGreaterThan(4 * 2 ** 30);
    expect(memory()).toBe(mem0);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(256 * 2 ** 20);
    expect(() => attn.forwardSync(q, q, q)).toThrow(/wasm32 allows at most 4\.00 GiB/);
    attn.dispose();
  });
});

describe('AbortSignal on a huge call', () => {
  it('rejects at once on abort and the workers stop within a task each (all, [1, 16384, 512], 8 heads: ~275 GFLOP)', async () => {
    const c: Case = { mode: 'all', bs: 32, batch: 1, nCtx: 16384, heads: 8, headDim: 64 };
    const attn = new SparseAttention(c.heads, c.mode, undefined, c.bs, { backend: 'wasm', threads: 2 });
    const { q, k, v } = inputs(c);
    const ac = new AbortController();
    const call = track(attn.forward(q, k, v, { signal: ac.signal }));
    const queued = track(attn.forward(q, k, v, { signal: ac.signal })); // waits behind the first
    await new Promise((r) => setTimeout(r, 300));
    const cpu0 = cpuMs();
    ac.abort(new Error('caller gave up'));
    await nextTurn(); // neither rejection waits for the workers
    expect([call.state, queued.state]).toEqual(['rejected', 'rejected']);
    expect(String(call.error)).toMatch('caller gave up');
    expect(String(queued.error)).toMatch('caller gave up');
    const s: Case = { mode: 'all', bs: 32, batch: 1, nCtx: 40, heads: 8, headDim: 64 };
    const small = inputs(s);
    const out = await attn.forward(small.q, small.k, small.v); // runs once the workers have stopped
    // Work, not wall-clock time: after the abort each worker finishes its running task (<= ~50 ms
    // of one core) and takes no other; the ~10 CPU-seconds left of the call are never run.
    expect(cpuMs() - cpu0, 'CPU ms from the abort to the next call done').toBeLessThan(2000);
    expectClose(out.data, reference(s), 1e-5, 1e-4, 'after the abort');
    attn.dispose();
  });
});
