// Every WebGPU kernel variant of the table (src/backends/webgpu/variants.ts), named through
// options.webgpu.variant, against the float64 reference on cases where it applies (see
// webgpuVariantPaths in test/backends.ts). A variant this adapter cannot run (its workgroup
// memory, subgroups) is a skipped test that says why. The conformance suite itself
// (webgpu.test.ts) runs the automatic choice over every case. On a software adapter the
// programs keep their chunk-pair loops rolled (Program.rolledPairs: 6× less LLVM time); the
// last block runs the texts a hardware GPU compiles, pairs unrolled, on this adapter too.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SparseAttention, attentionReference } from '../dist/index.js';
import { webgpuVariantPaths } from './backends.js';
import { GPU_TIMEOUT, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { describeCase, expectClose, inputs, reference } from './helpers.js';
import { __testing } from './internal.js';

const adapter = probeAdapter();
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
// Each variant's instances are disposed after its cases: the held device keeps one device for the file.
holdSharedDevice(adapter.ok);
const { paths, cannot } = webgpuVariantPaths(adapter.workgroupBytes ?? 16384, true);

describe.runIf(adapter.ok)('webgpu kernel variants', () => {
  let subgroups: boolean | undefined;

  it.for(cannot.map((x) => [x.name, x.reason] as const))('%s: cannot run here', ([name, reason], ctx) => {
    ctx.skip(`${name}: ${reason} (this adapter: ${adapter.workgroupBytes} bytes of workgroup memory)`);
  });

  for (const path of paths) describe(path.name, () => {
    const instances: SparseAttention[] = [];
    afterAll(() => instances.forEach((a) => a.dispose()));
    it.for(path.cases.map((x) => [`${describeCase(x.c)}${x.infInV ? ' Inf in V' : ''}`, x] as const))('%s', async ([, { c, infInV }], ctx) => {
      const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, ...path.options });
      instances.push(attn);
      if (subgroups === undefined) subgroups = ((await attn.gpuDevice()) as unknown as GPUDevice).features.has('subgroups');
      if (path.variant.subgroups && !subgroups) ctx.skip(`${path.variant.name}: the adapter has no subgroups`);
      const { q, k, v } = inputs(c);
      let ref = reference(c);
      if (infInV) {
        v.data[(1 * c.nCtx + c.bs + 1) * c.heads * c.headDim + 3] = Infinity;
        ref = attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, c.options ?? {}, { keyLengths: c.keyLengths }).data;
      }
      const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
      expect(attn.lastRun?.backend, attn.lastRun?.reason).toBe('webgpu');
      expectClose(out.data, ref, path.atol, path.rtol, `${path.name} ${describeCase(c)}`);
    });
  });
});

describe.runIf(adapter.ok)('webgpu programs as a hardware GPU compiles them (chunk-pair loops unrolled)', () => {
  const instances: SparseAttention[] = [];
  beforeAll(() => {
    __testing.programs.fullUnroll = true;
  });
  afterAll(() => {
    __testing.programs.fullUnroll = false;
    instances.forEach((a) => a.dispose());
  });
  // The H100's Q-per-tile kernel at head dim 64 in the shape that fits 32 KiB (both pair loops
  // unrolled at head dim 64), and the automatic choice at head dim 64 with a score modifier.
  const bs = 64, nCtx = 2 * bs + 3, headDim = 64;
  const cases: [string, { variant?: string; c: Parameters<typeof inputs>[0] }][] = [
    ['bsattn_fwd_f32_q64_k64_qtile (pinned)', {
      variant: 'bsattn_fwd_f32_q64_k64_qtile__subgroups',
      c: { mode: 'fixed', L: 2 * bs, bs, batch: 2, nCtx, heads: 2, headDim, keyLengths: [nCtx, bs + 1] },
    }],
    ['the automatic choice', {
      c: { mode: 'local', L: 80, bs, batch: 1, nCtx, heads: 2, headDim, options: { softcap: 20 } },
    }],
  ];
  it.for(cases)('%s', async ([, { variant, c }], ctx) => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, backend: 'webgpu', webgpu: variant ? { variant } : {} });
    instances.push(attn);
    const device = (await attn.gpuDevice()) as unknown as GPUDevice;
    if (variant?.includes('subgroups') && !device.features.has('subgroups')) ctx.skip(`${variant}: the adapter has no subgroups`);
    const { q, k, v } = inputs(c);
    const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
    expect(attn.lastRun?.backend, attn.lastRun?.reason).toBe('webgpu');
    expectClose(out.data, reference(c), 1e-4, 1e-3, describeCase(c));
  });
});
