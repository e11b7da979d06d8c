// The GPU path owns its inputs too (issue 15, defects 1, 2): a forced 'webgpu' instance
// whose input is detached after forward() returned rejects with ERR_ARGUMENT and keeps
// using the GPU (a usage error is not a device failure); swapped tensor data after the
// call does not change it; onProgress reports by chunks. On whatever adapter this machine
// has (CI: lavapipe); skipped with the reason elsewhere.
import { describe, expect, it, vi } from 'vitest';
import { SparseAttention, SparseAttentionError } from '../dist/index.js';
import { GPU_TIMEOUT, REQUIRE_GPU, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { expectClose, inputs, reference, type Case } from './helpers.js';

const adapter = probeAdapter();
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
holdSharedDevice(adapter.ok);
const TOL = [1e-4, 1e-3] as const;
const c: Case = { mode: 'local', L: 9, bs: 16, batch: 2, nCtx: 70, heads: 2, headDim: 8 };
const detach = (a: Float32Array) => structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });

describe.runIf(adapter.ok || REQUIRE_GPU)('webgpu: calls own their inputs', () => {
  it('q detached after forward(): ERR_ARGUMENT, and the next call still runs on the GPU', async () => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'webgpu' });
    const t = inputs(c, 1);
    const call = attn.forward(t.q, t.k, t.v);
    detach(t.q.data);
    const err = await call.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SparseAttentionError);
    expect((err as { code: string }).code).toBe('ERR_ARGUMENT');
    expect((err as Error).message).toMatch(/q\.data changed after the call was made/);
    const u = inputs(c, 2);
    const out = await attn.forward(u.q, u.k, u.v);
    expect(attn.lastRun!.backend, attn.lastRun!.reason).toBe('webgpu');
    expectClose(out.data, reference(c, 2), ...TOL, 'after a detached input');
    attn.dispose();
  });

  it('v.data swapped and q.shape edited after forward(): the call computes what was passed', async () => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'webgpu' });
    const t = inputs(c, 3);
    const call = attn.forward(t.q, t.k, t.v);
    t.v.data = new Float32Array(t.v.data.length * 2).fill(NaN);
    (t.q.shape as number[])[1] = 1;
    const out = await call;
    expect(attn.lastRun!.backend).toBe('webgpu');
    expect(out.shape).toEqual([c.batch, c.nCtx, c.heads * c.headDim]);
    expectClose(out.data, reference(c, 3), ...TOL, 'swapped v.data');
    attn.dispose();
  });

  it('onProgress by chunks, ending with 1', async () => {
    // One batch item of one head per binding: 4 chunks.
    const bytes = c.nCtx * c.headDim * 4;
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'webgpu', webgpu: { maxBindingBytes: bytes } });
    const t = inputs(c, 4);
    const seen: number[] = [];
    const out = await attn.forward(t.q, t.k, t.v, { onProgress: (f) => seen.push(f) });
    expectClose(out.data, reference(c, 4), ...TOL, 'chunked');
    expect(seen.at(-1)).toBe(1);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
    attn.dispose();
  });
});
