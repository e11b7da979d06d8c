// The conformance suite against the WebGPU path, on whatever adapter this machine has (in
// CI: Mesa's lavapipe). lavapipe compiles each pipeline at its first dispatch (5–35
// CPU-seconds on a fresh machine) and then runs a small case in milliseconds: the default
// path runs every case, the plain (no subgroups) path the cases whose head dim is a multiple
// of 4 and pads to 32 (every mode, causal and bidirectional, every edge size and block
// size), the Q_TILE path the
// cases the GPU runs at 64/128-row blocks, at head dim 32 (test/backends.ts webgpuPaths).
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { type GpuCaseSet, webgpuPaths } from './backends.js';
import { conformanceCases } from './cases.js';
import { ENABLE_HINT, GPU_TIMEOUT, REQUIRE_GPU, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { type Case, describeCase, expectClose, inputs, reference } from './helpers.js';
import { residentCopies } from '../scripts/lib/property.mjs';

const adapter = probeAdapter(); // without one, the run's last line says how to enable these suites
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
holdSharedDevice(adapter.ok);

// In CI (SPARSE_ATTENTION_CI=1) a missing adapter is a failure, not a skip.
describe('webgpu adapter', () => {
  it('exists (SPARSE_ATTENTION_CI=1 or SPARSE_ATTENTION_REQUIRE_GPU=1)', (ctx) => {
    if (!REQUIRE_GPU) ctx.skip('checked only with SPARSE_ATTENTION_CI=1 (as .ci/run sets it) or SPARSE_ATTENTION_REQUIRE_GPU=1; without it a machine with no adapter skips the GPU suites and the run ends with a line saying how to enable them');
    expect(adapter.ok, `no WebGPU adapter (${adapter.error ?? 'requestAdapter returned null'}). ${ENABLE_HINT}`).toBe(true);
  });
});

const cases = conformanceCases();
const paths = webgpuPaths();

/** The block the GPU runs a case at (plan() needs no device: the geometry is the backend's rule). */
function gpuBlock(c: Case): number {
  const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, backend: 'webgpu' });
  try {
    return attn.plan([c.batch, c.nCtx, c.heads * c.headDim]).blockSize;
  } finally {
    attn.dispose();
  }
}

const casesFor: Record<GpuCaseSet, () => Case[]> = {
  all: () => cases,
  vec4UpTo32: () => cases.filter((c) => c.headDim <= 32 && c.headDim % 4 === 0),
  qTile32: () => cases.map((c) => ({ ...c, headDim: 32 })).filter((c) => gpuBlock(c) % 64 === 0),
};

describe.runIf(adapter.ok).each(paths)('$name', (path) => {
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  const mine = casesFor[path.cases]();

  it.each(mine.map((c) => [describeCase(c), c] as const))('%s', async (_name, c) => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, ...path.options });
    instances.push(attn);
    const { q, k, v } = inputs(c);
    const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
    expect(attn.lastRun?.backend, attn.lastRun?.reason).toBe('webgpu');
    expect(out.shape).toEqual(q.shape);
    expectClose(out.data, reference(c), path.atol, path.rtol, `${path.name} ${describeCase(c)}`);
  });
});

// forward's `out` and createTensor() tensors (views of the CPU engine's shared memory) on
// the GPU path: uploaded from shared memory, the result written into `out`.
describe.runIf(adapter.ok)('webgpu: out option and createTensor tensors', () => {
  it('reads shared-memory tensors and fills out, as with plain arrays', async () => {
    const c = cases.find((x) => x.mode === 'strided' && x.headDim <= 32 && x.batch > 1) ?? cases[0];
    const cpu = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, backend: 'wasm', threads: 2 });
    const gpu = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, backend: 'webgpu' });
    try {
      const { q, k, v } = inputs(c);
      const [rq, rk, rv, ro] = residentCopies(cpu, q.shape, [q, k, v, null]);
      expect(rq.data.buffer.constructor.name).toBe('SharedArrayBuffer');
      const r1 = await gpu.forward(rq, rk, rv, { keyLengths: c.keyLengths, out: ro.data });
      expect(gpu.lastRun?.backend, gpu.lastRun?.reason).toBe('webgpu');
      expect(r1.data).toBe(ro.data);
      expectClose(ro.data, reference(c), 1e-4, 1e-3, `webgpu createTensor ${describeCase(c)}`);
      const plainOut = new Float32Array(q.data.length);
      const r2 = await gpu.forward(q, k, v, { keyLengths: c.keyLengths, out: plainOut });
      expect(r2.data).toBe(plainOut);
      expect(plainOut).toEqual(ro.data);
      // a GPU-only instance hands out ordinary arrays (it has no CPU engine memory to share)
      expect(gpu.createTensor(q.shape).data.buffer.constructor.name).toBe('ArrayBuffer');
    } finally {
      cpu.dispose();
      gpu.dispose();
    }
  });
});
