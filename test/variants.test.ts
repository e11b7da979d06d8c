// Every WebGPU kernel variant of the table (src/backends/webgpu/variants.ts), named through
// options.webgpu.variant, against the float64 reference on cases where it applies (see
// webgpuVariantPaths in test/backends.ts). A variant this adapter cannot run (its workgroup
// memory, subgroups) is a skipped test that says why. The conformance suite itself
// (webgpu.test.ts) runs the automatic choice over every case.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SparseAttention, attentionReference } from '../dist/index.js';
import { webgpuVariantPaths } from './backends.js';
import { GPU_TIMEOUT, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { describeCase, expectClose, inputs, reference } from './helpers.js';

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
