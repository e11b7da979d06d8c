// Reliability of the WebGPU path (issue 6), on whatever adapter this machine has (CI:
// lavapipe): 200 calls in flight on one instance and across instances, every result right
// for its own inputs; bit-identical results for the same inputs; a soak of mixed shapes in
// which the GPU buffers held stay bounded and dispose() releases them. SOAK_GPU_CALLS sets the soak length (default 300; the figures in
// docs/reliability.md come from SOAK_GPU_CALLS=10000).
import { describe, expect, it, vi } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { GPU_TIMEOUT, REQUIRE_GPU, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { describeCase, expectClose, inputs, reference, type Case } from './helpers.js';
import { nextTurn, track } from './settle.js';

const adapter = probeAdapter();
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
holdSharedDevice(adapter.ok);
const TOL = { atol: 1e-4, rtol: 1e-3 };

const SHAPES: Case[] = [
  { mode: 'all', bs: 16, batch: 2, nCtx: 37, heads: 2, headDim: 8 },
  { mode: 'local', L: 9, bs: 16, batch: 1, nCtx: 70, heads: 2, headDim: 4 },
  { mode: 'strided', L: 5, bs: 16, batch: 1, nCtx: 60, heads: 3, headDim: 6 },
  { mode: 'all', bs: 16, batch: 1, nCtx: 64, heads: 2, headDim: 16, keyLengths: [20] },
];

/** The GPU buffers an instance's backend holds (internal, for this test only). */
const gpuBuffers = (attn: SparseAttention) => (attn as unknown as { gpu: { bufferCount: number } | null }).gpu?.bufferCount ?? 0;

async function check(attn: SparseAttention, c: Case, seed: number, failures: string[]): Promise<void> {
  const { q, k, v } = inputs(c, seed);
  const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
  if (attn.lastRun?.backend !== 'webgpu') failures.push(`seed ${seed}: ran on ${attn.lastRun?.backend}: ${attn.lastRun?.reason}`);
  try {
    expectClose(out.data, reference(c, seed), TOL.atol, TOL.rtol, `seed ${seed} ${describeCase(c)}`);
  } catch (e) {
    failures.push((e as Error).message);
  }
}

describe.runIf(adapter.ok || REQUIRE_GPU)('webgpu reliability', () => {
  it('200 calls in flight on one instance: every result right for its own inputs', async () => {
    const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'webgpu' });
    const failures: string[] = [];
    const shapes = SHAPES.filter((c) => c.mode === 'all' && c.heads === 2);
    await Promise.all(Array.from({ length: 200 }, (_, i) => check(attn, shapes[i % shapes.length], 5000 + i, failures)));
    attn.dispose();
    expect(failures).toEqual([]);
  });

  it('200 calls in flight across 4 instances (modes, shapes, key lengths), sharing one device', async () => {
    const instances = SHAPES.map((c) => new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'webgpu' }));
    const failures: string[] = [];
    await Promise.all(Array.from({ length: 200 }, (_, i) => check(instances[i % 4], SHAPES[i % 4], 7000 + i, failures)));
    instances.forEach((a) => a.dispose());
    expect(failures).toEqual([]);
  });

  it('determinism: the same inputs give bit-identical outputs, call after call and across instances', async () => {
    const c: Case = { mode: 'local', L: 13, bs: 16, batch: 2, nCtx: 150, heads: 2, headDim: 24 };
    const { q, k, v } = inputs(c, 3);
    const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
    const a = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'webgpu' });
    const b = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'webgpu' });
    const first = bits((await a.forward(q, k, v)).data);
    for (const attn of [a, a, b, a]) expect(bits((await attn.forward(q, k, v)).data)).toEqual(first);
    a.dispose();
    b.dispose();
  });

  it('an AbortSignal rejects a long GPU call at once; no CPU fallback; the instance stays usable', async () => {
    // head dim 24: the pipelines of the conformance suite's 'all' cases (128- and 64-row
    // blocks, padded head dim 32), so this test compiles none of its own
    const big: Case = { mode: 'all', bs: 16, batch: 1, nCtx: 2048, heads: 4, headDim: 24 };
    const attn = new SparseAttention(big.heads, big.mode, undefined, big.bs, { backend: 'webgpu' });
    const t = inputs(big);
    const small: Case = { mode: 'all', bs: 16, batch: 1, nCtx: 40, heads: 4, headDim: 24 };
    const s = inputs(small);
    await attn.forward(s.q, s.k, s.v); // device and pipelines ready
    const ac = new AbortController();
    const call = track(attn.forward(t.q, t.k, t.v, { signal: ac.signal }));
    await new Promise((r) => setTimeout(r, 20));
    ac.abort(new Error('stop'));
    await nextTurn(); // rejected at once, not when the GPU work ends (no clock read: see test/settle.ts)
    expect(call.state).toBe('rejected');
    expect(String(call.error)).toMatch('stop');
    const out = await attn.forward(s.q, s.k, s.v);
    expect(attn.lastRun?.backend).toBe('webgpu');
    expectClose(out.data, reference(small), TOL.atol, TOL.rtol, 'after abort');
    attn.dispose();
  });

  it('soak: mixed shapes, GPU buffers bounded, dispose releases them', async () => {
    const calls = Number(process.env.SOAK_GPU_CALLS ?? 300);
    const attn = new SparseAttention(2, 'all', undefined, 16, { backend: 'webgpu' });
    const failures: string[] = [];
    const shapes: Case[] = [16, 40, 100, 64, 7].map((nCtx, i) => ({ mode: 'all', bs: 16, batch: 1 + (i % 2), nCtx, heads: 2, headDim: 8 }));
    let peak = 0;
    const samples: number[] = [];
    const rss: number[] = [];
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) {
      const c = shapes[i % shapes.length];
      const { q, k, v } = inputs(c, 1);
      const out = await attn.forward(q, k, v);
      if (i % 50 === 0) {
        // Every 50th result is checked against the reference.
        try {
          expectClose(out.data, reference(c, 1), TOL.atol, TOL.rtol, `call ${i} ${describeCase(c)}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
      peak = Math.max(peak, gpuBuffers(attn));
      if (i % Math.max(1, Math.floor(calls / 10)) === 0) {
        samples.push(gpuBuffers(attn));
        rss.push(Math.round(process.memoryUsage().rss / 2 ** 20));
      }
    }
    const rssGrowthMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
    console.log(
      `webgpu soak: ${calls} calls in ${((performance.now() - t0) / 1000).toFixed(1)} s; GPU buffers held, sampled: ` +
        `${samples.join(' ')} (peak ${peak}); RSS MiB, sampled: ${rss.join(' ')} (growth ${rssGrowthMiB.toFixed(1)})`,
    );
    expect(failures).toEqual([]);
    // One buffer per role (q, k, v, out, staging, …) plus at most 4 cached layouts: bounded by
    // a small constant, whatever the number of calls.
    expect(peak).toBeLessThanOrEqual(16);
    attn.dispose();
    expect(gpuBuffers(attn)).toBe(0);
  });
});
