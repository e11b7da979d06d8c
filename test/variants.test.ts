// Every WebGPU kernel variant of the table without subgroups (src/backends/webgpu/variants.ts),
// named through options.webgpu.variant, against the float64 reference on cases where it
// applies (see webgpuVariantPaths in test/backends.ts). A variant this adapter cannot run (its
// workgroup memory) is a skipped test that says why. The subgroup variants are in
// test/variants-subgroups.test.ts; the conformance suite itself (webgpu.test.ts) runs the
// automatic choice over every case. `npm test` runs the variants of defaultVariantNames();
// SPARSE_ATTENTION_GPU_FULL=1 (CI) the whole table. On a software adapter the programs keep their chunk-pair
// loops rolled (Program.rolledPairs: a fraction of the LLVM time); with SPARSE_ATTENTION_GPU_FULL=1
// (CI) the last block also runs the texts a hardware GPU compiles, pairs unrolled.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { checkVariantCase, defaultVariantNames, webgpuVariantPaths } from './backends.js';
import { GPU_TIMEOUT, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { describeCase, expectClose, inputs, reference } from './helpers.js';
import { __testing } from './internal.js';
import { GPU_FULL, GPU_FULL_ENABLE, recordSkip } from './optional.js';

const adapter = probeAdapter();
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
// Each variant's instances are disposed after its cases: the held device keeps one device for the file.
holdSharedDevice(adapter.ok);
const table = webgpuVariantPaths(adapter.workgroupBytes ?? 16384, true);
const DEFAULT = defaultVariantNames(adapter.workgroupBytes ?? 16384, false);
const paths = table.paths.filter((p) => !p.variant.subgroups && (GPU_FULL || DEFAULT.has(p.variant.name)));
const notRun = table.paths.filter((p) => !p.variant.subgroups && !paths.includes(p)).map((p) => p.variant.name);
const cannot = table.cannot.filter((x) => !x.name.endsWith('__subgroups'));
if (adapter.ok && notRun.length > 0) {
  recordSkip({ what: `${notRun.length} more plain variants of the GPU kernel table`, why: 'minutes of lavapipe compiling', enable: GPU_FULL_ENABLE });
}

describe.runIf(adapter.ok)('webgpu kernel variants without subgroups', () => {
  it.for(cannot.map((x) => [x.name, x.reason] as const))('%s: cannot run here', ([name, reason], ctx) => {
    ctx.skip(`${name}: ${reason} (this adapter: ${adapter.workgroupBytes} bytes of workgroup memory)`);
  });
  it.for(notRun)('%s: runs with SPARSE_ATTENTION_GPU_FULL=1', (name, ctx) => {
    ctx.skip(`${name}: the full variant table runs with SPARSE_ATTENTION_GPU_FULL=1 (CI sets it)`);
  });

  for (const path of paths) describe(path.name, () => {
    const instances: SparseAttention[] = [];
    afterAll(() => instances.forEach((a) => a.dispose()));
    it.for(path.cases.map((x) => [`${describeCase(x.c)}${x.infInV ? ' Inf in V' : ''}`, x] as const))('%s', async ([, x]) => {
      const { c } = x;
      const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, ...path.options });
      instances.push(attn);
      await checkVariantCase(attn, path, x);
    });
  });
});

if (adapter.ok && !GPU_FULL) {
  recordSkip({ what: 'the GPU program texts of a hardware GPU (loops unrolled: forward, flash-decoding) on this adapter', why: 'minutes of lavapipe compiling', enable: GPU_FULL_ENABLE });
}

describe.runIf(adapter.ok && GPU_FULL)('webgpu programs as a hardware GPU compiles them (chunk-pair loops unrolled), without subgroups', () => {
  const instances: SparseAttention[] = [];
  beforeAll(() => {
    __testing.programs.fullUnroll = true;
  });
  afterAll(() => {
    __testing.programs.fullUnroll = false;
    instances.forEach((a) => a.dispose());
  });
  // The automatic choice at head dim 64 (both pair loops unrolled there), with a score modifier.
  it('local L=80 bs=64, head dim 64, softcap', async () => {
    const c = { mode: 'local' as const, L: 80, bs: 64, batch: 1, nCtx: 131, heads: 2, headDim: 64, options: { softcap: 20 } };
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, backend: 'webgpu', webgpu: { subgroups: false } });
    instances.push(attn);
    const { q, k, v } = inputs(c);
    const out = await attn.forward(q, k, v);
    expect(attn.lastRun?.backend, attn.lastRun?.reason).toBe('webgpu');
    expectClose(out.data, reference(c), 1e-4, 1e-3, describeCase(c));
  });
});
