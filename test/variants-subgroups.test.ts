// The GPU kernels with subgroup reductions: the subgroup variants of the kernel table
// (src/backends/webgpu/variants.ts), flash-decoding with 8-lane shuffles (with modifiers, lse
// and the combine pass) and the forward program with inference shapes and modifiers, against
// the float64 reference. The other GPU suites run lavapipe at 128-bit vectors, where its
// subgroups are 4 wide and the kernels (which shuffle across 8 lanes) take the plain path;
// this file loads it at 256 bits (subgroups of 8), set before any adapter is made here.
// `npm test` runs the subgroup variants the automatic choice picks for the suites' shapes on
// this adapter and the H100's Q-per-tile kernel; SPARSE_ATTENTION_GPU_FULL=1 (CI) runs every
// subgroup variant of the table and the hardware texts of that kernel and of flash-decoding
// (their loops unrolled, see ProgramCache).
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SparseAttention, attentionReference } from '../dist/index.js';
import { checkVariantCase, defaultVariantNames, webgpuVariantPaths } from './backends.js';
import { GPU_TIMEOUT, holdSharedDevice, probeAdapter } from './gpu-env.js';
import { describeCase, expectClose, inputs, randomTensor, reference } from './helpers.js';
import { __testing } from './internal.js';
import { GPU_FULL, GPU_FULL_ENABLE, recordSkip } from './optional.js';

process.env.LP_NATIVE_VECTOR_WIDTH = '256';
const adapter = probeAdapter();
vi.setConfig({ testTimeout: GPU_TIMEOUT, hookTimeout: GPU_TIMEOUT });
holdSharedDevice(adapter.ok);
const wgBytes = adapter.workgroupBytes ?? 16384;
const table = webgpuVariantPaths(wgBytes, true);
const PINNED = 'bsattn_fwd_f32_q64_k64_qtile__subgroups';
const DEFAULT = defaultVariantNames(wgBytes, true);
const paths = table.paths.filter((p) => p.variant.subgroups && (GPU_FULL || DEFAULT.has(p.variant.name)));
const notRun = table.paths.filter((p) => p.variant.subgroups && !paths.includes(p)).map((p) => p.variant.name);
const cannot = table.cannot.filter((x) => x.name.endsWith('__subgroups'));
if (adapter.ok && notRun.length > 0) {
  recordSkip({ what: `${notRun.length} more subgroup variants of the GPU kernel table`, why: 'minutes of lavapipe compiling', enable: GPU_FULL_ENABLE });
}

const TOL = { atol: 1e-4, rtol: 1e-3 };
const LSE_TOL = { atol: 2e-4, rtol: 1e-5 };

describe.runIf(adapter.ok)('webgpu kernels with subgroups', () => {
  let subgroups: boolean | undefined;
  const instances: SparseAttention[] = [];
  afterAll(() => instances.forEach((a) => a.dispose()));
  const track = (a: SparseAttention) => (instances.push(a), a);
  /** Skips when the adapter has no 8-wide subgroups (the library then runs the plain kernels). */
  async function needSubgroups(attn: SparseAttention, skip: (why: string) => void): Promise<void> {
    subgroups ??= ((await attn.gpuDevice()) as unknown as GPUDevice).features.has('subgroups');
    if (!subgroups) skip('the adapter has no subgroups of 8 or more lanes');
  }

  it.for(cannot.map((x) => [x.name, x.reason] as const))('%s: cannot run here', ([name, reason], ctx) => {
    ctx.skip(`${name}: ${reason} (this adapter: ${adapter.workgroupBytes} bytes of workgroup memory)`);
  });
  it.for(notRun)('%s: runs with SPARSE_ATTENTION_GPU_FULL=1', (name, ctx) => {
    ctx.skip(`${name}: the full variant table runs with SPARSE_ATTENTION_GPU_FULL=1 (CI sets it)`);
  });

  for (const path of paths) describe(path.name, () => {
    it.for(path.cases.map((x) => [`${describeCase(x.c)}${x.infInV ? ' Inf in V' : ''}`, x] as const))('%s', async ([, x], ctx) => {
      const { c } = x;
      const attn = track(new SparseAttention(c.heads, c.mode, c.L, c.bs, { ...c.options, ...path.options }));
      await needSubgroups(attn, ctx.skip);
      await checkVariantCase(attn, path, x);
    });
  });

  // Flash-decoding at head dim 32 (8 lanes a key: one subgroup shuffle tree) and the forward
  // program with XATTN and MODS, 8 query heads on 2 K/V heads, every modifier and lse.
  const D = 32, BS = 64;
  const sinks = Float32Array.from([1.5, -2, 0.25, 3, -0.5, 0, 2, -1]);
  const mods = { scale: 0.3, softcap: 2.5, alibi: true, sinks };
  const shapes: [string, { nQ: number; nK: number; splits?: number; mods: boolean; says: RegExp }][] = [
    ['flash-decoding, 1 split', { nQ: 1, nK: 700, splits: 1, mods: false, says: /flash-decoding: 1 split / }],
    ['flash-decoding, 7 splits and the combine pass', { nQ: 1, nK: 700, splits: 7, mods: false, says: /flash-decoding: 7 splits .*combine/ }],
    ['flash-decoding with every modifier and lse, 7 splits', { nQ: 3, nK: 700, splits: 7, mods: true, says: /flash-decoding: 7 splits .*combine/ }],
    ['the forward program, nQ < nK, every modifier and lse', { nQ: 40, nK: 130, mods: true, says: /forward kernel/ }],
  ];
  it.for(shapes)('%s', async ([, s], ctx) => {
    const options = { causal: true, kvHeads: 2, ...(s.mods ? mods : {}) };
    const attn = track(new SparseAttention(8, 'all', undefined, BS, { ...options, backend: 'webgpu', webgpu: s.splits ? { decodeSplits: s.splits } : {} }));
    await needSubgroups(attn, ctx.skip);
    const q = randomTensor([2, s.nQ, 8 * D], 20, 2);
    const k = randomTensor([2, s.nK, 2 * D], 21, 2);
    const v = randomTensor([2, s.nK, 2 * D], 22);
    const ref = attentionReference(q, k, v, 8, 'all', undefined, BS, options);
    const lse = new Float32Array(2 * 8 * s.nQ);
    const out = await attn.forward(q, k, v, { lse });
    expect(attn.lastRun?.backend, attn.lastRun?.reason).toBe('webgpu');
    expect(attn.lastRun?.reason).toMatch(s.says);
    expectClose(out.data, ref.data, TOL.atol, TOL.rtol, 'out');
    expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, 'lse');
  });

  it.runIf(GPU_FULL)(`${PINNED} and flash-decoding as a hardware GPU compiles them (loops unrolled)`, async (ctx) => {
    const c = { mode: 'fixed' as const, L: 128, bs: 64, batch: 2, nCtx: 131, heads: 2, headDim: 64, keyLengths: [131, 65] };
    __testing.programs.fullUnroll = true;
    try {
      const attn = track(new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'webgpu', webgpu: { variant: PINNED } }));
      await needSubgroups(attn, ctx.skip);
      const { q, k, v } = inputs(c);
      const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
      expect(attn.lastRun?.backend, attn.lastRun?.reason).toBe('webgpu');
      expectClose(out.data, reference(c), TOL.atol, TOL.rtol, describeCase(c));
      // flash-decoding's hardware text too (its row loops unrolled), 7 splits and the combine pass
      const options = { causal: true, kvHeads: 2, ...mods };
      const dec = track(new SparseAttention(8, 'all', undefined, BS, { ...options, backend: 'webgpu', webgpu: { decodeSplits: 7 } }));
      const dq = randomTensor([2, 1, 8 * D], 30, 2), dk = randomTensor([2, 700, 2 * D], 31, 2), dv = randomTensor([2, 700, 2 * D], 32);
      const ref = attentionReference(dq, dk, dv, 8, 'all', undefined, BS, options);
      const lse = new Float32Array(2 * 8);
      const got = await dec.forward(dq, dk, dv, { lse });
      expect(dec.lastRun?.reason).toMatch(/flash-decoding: 7 splits/);
      expectClose(got.data, ref.data, TOL.atol, TOL.rtol, 'flash-decoding');
      expectClose(lse, ref.lse, LSE_TOL.atol, LSE_TOL.rtol, 'flash-decoding lse');
    } finally {
      __testing.programs.fullUnroll = false;
    }
  });
});
