// Every path the conformance suite runs: each wasm build this runtime validates, single-
// and multi-threaded, and forwardSync; the WebGPU paths, and each WebGPU kernel variant of
// the table where it applies. Tolerances per path (DESIGN.md §1).
import { expect } from 'vitest';
import { SparseAttention, attentionReference, wasmVariants, type SparseAttentionOptions } from '../dist/index.js';
import { VARIANTS, type Variant, chooseVariant, whyNot } from '../src/backends/webgpu/variants.js';
import { type Case, describeCase, expectClose, inputs, reference } from './helpers.js';

export interface PathUnderTest {
  name: string;
  options: SparseAttentionOptions;
  sync?: boolean;
  /** No KV cache on this path: it lives in the threaded engine's shared memory (no threaded scalar build; forwardSync's engine is single-threaded). */
  noCache?: boolean;
  atol: number;
  rtol: number;
}

const WASM_TOL = { atol: 1e-5, rtol: 1e-4 };

export function wasmPaths(): PathUnderTest[] {
  const paths: PathUnderTest[] = [];
  for (const variant of wasmVariants()) {
    paths.push({ name: `wasm ${variant} 1 thread`, options: { backend: 'wasm', wasmVariant: variant, threads: 1 }, noCache: variant === 'scalar', ...WASM_TOL });
    if (variant !== 'scalar') {
      paths.push({ name: `wasm ${variant} 3 threads`, options: { backend: 'wasm', wasmVariant: variant, threads: 3 }, ...WASM_TOL });
    }
  }
  paths.push({ name: 'wasm forwardSync', options: { backend: 'wasm' }, sync: true, noCache: true, ...WASM_TOL });
  return paths;
}

const WEBGPU_TOL = { atol: 1e-4, rtol: 1e-3 };

/**
 * Which conformance cases a WebGPU path runs (test/webgpu.test.ts). lavapipe compiles each
 * pipeline (variant × block × padded head dim × vec4 or not) at its first dispatch, 5–35
 * CPU-seconds on a fresh machine, then runs a case in milliseconds: the default path runs
 * every case; the others run the cases where they differ from it.
 * - 'all': every case;
 * - 'vec4UpTo32': head dims <= 32 that are multiples of 4 (one padded 32-wide chunk; every
 *   mode, edge size and block size): the plain variants differ in the row reductions, not in
 *   how Q, K and V are read, which the default path runs at every head dim;
 * - 'qTile32': the cases the GPU runs at a block of 64 or 128 rows, at head dim 32 (the Q_TILE
 *   variant needs an unpadded head dim; elsewhere it does not apply and the automatic choice,
 *   already run by the default path, would run instead).
 */
export type GpuCaseSet = 'all' | 'vec4UpTo32' | 'qTile32';

/**
 * The WebGPU paths of the conformance suite: the automatic variant choice (subgroup variants
 * where the adapter has them), the same without subgroups (the `__plain` variants), and the
 * H100's Q_TILE kernel at head dim 64 in a 64×64 shape that fits lavapipe's 32 KiB (its
 * 128×64 does not; lavapipe's own choice at block 128 is 128×32 with Q from global memory).
 * Every variant of the table, each where it applies, is webgpuVariantPaths().
 */
export function webgpuPaths(): (PathUnderTest & { cases: GpuCaseSet })[] {
  return [
    { name: 'webgpu default', options: { backend: 'webgpu' }, cases: 'all', ...WEBGPU_TOL },
    { name: 'webgpu plain (no subgroups)', options: { backend: 'webgpu', webgpu: { subgroups: false } }, cases: 'vec4UpTo32', ...WEBGPU_TOL },
    {
      name: 'webgpu bsattn_fwd_f32_q64_k64_qtile__subgroups (Q staged per tile beside K)',
      options: { backend: 'webgpu', webgpu: { variant: 'bsattn_fwd_f32_q64_k64_qtile__subgroups' } },
      cases: 'qTile32',
      ...WEBGPU_TOL,
    },
  ];
}

export interface VariantCase {
  c: Case;
  /** Set V[batch 1, key bs + 1, head 0, dim 3] to Inf: masked for the rows before it. */
  infInV?: boolean;
}

export interface VariantPath extends PathUnderTest {
  variant: Variant;
  /** Cases in which the named variant is the one that runs: block sizes it divides, a head dim its Q placement takes. */
  cases: VariantCase[];
}

/**
 * The variants `npm test` runs of the table (the rest with SPARSE_ATTENTION_GPU_FULL=1, as CI
 * does): the automatic choice at the suites' block sizes and head dims (here, the inference
 * and modifier suites), and the H100's Q-per-tile kernel in the shape that fits 32 KiB.
 */
export function defaultVariantNames(workgroupBytes: number, subgroups: boolean): Set<string> {
  // (with subgroups, at 256-bit lavapipe, each costs twice: the tall tiles only)
  const shapes = subgroups ? [[128, 32]] : [[128, 32], [64, 32], [64, 8], [16, 8]];
  const chosen = shapes.map(([bs, hd]) => chooseVariant(bs, hd, workgroupBytes, subgroups)?.name);
  return new Set([`bsattn_fwd_f32_q64_k64_qtile__${subgroups ? 'subgroups' : 'plain'}`, ...chosen.filter((n): n is string => n !== undefined)]);
}

/**
 * One path per kernel variant of the table (src/backends/webgpu/variants.ts), named by
 * options.webgpu.variant, with cases built where it applies: 'custom' and 'fixed' layouts
 * (the GPU runs them at the caller's block size) at a block of its query tile, a token mask,
 * key lengths that cut a tile and leave a row with no key, and an Inf in V (the masked P·V).
 * Head dim 8 (vec4, padded) for Q staged, 32 (unpadded) for Q from global memory or per tile.
 * Variants this adapter cannot run come back in `cannot`, with the reason.
 */
export function webgpuVariantPaths(workgroupBytes: number, subgroups: boolean): { paths: VariantPath[]; cannot: { name: string; reason: string }[] } {
  const paths: VariantPath[] = [];
  const cannot: { name: string; reason: string }[] = [];
  for (const variant of VARIANTS) {
    const bs = variant.bm;
    const headDim = variant.q === 'staged' ? 8 : 32;
    const reason = whyNot(variant, bs, headDim, workgroupBytes, subgroups);
    if (reason) {
      cannot.push({ name: variant.name, reason: `${reason} (block ${bs}, head dim ${headDim})` });
      continue;
    }
    const nCtx = 2 * bs + 3;
    const cases: VariantCase[] = [
      {
        c: {
          mode: 'custom', bs, batch: 2, nCtx, heads: 2, headDim, keyLengths: [nCtx, bs + 1],
          options: { layout: (h: number, qb: number, kb: number) => kb <= qb && (qb - kb) % (h + 2) !== 1, mask: (h: number, i: number, j: number) => (i + j + h) % 3 !== 0 },
        },
      },
      { c: { mode: 'fixed', L: 2 * bs, bs, batch: 1, nCtx: 3 * bs + 1, heads: 2, headDim, keyLengths: [2 * bs + 5], options: { causal: false } } },
      { c: { mode: 'fixed', L: 2 * bs, bs, batch: 2, nCtx, heads: 2, headDim, keyLengths: [0, nCtx] }, infInV: true },
    ];
    paths.push({ name: `webgpu ${variant.name}`, options: { backend: 'webgpu', webgpu: { variant: variant.name } }, variant, cases, ...WEBGPU_TOL });
  }
  return { paths, cannot };
}

/** Runs one case of a variant path on `attn` against the float64 reference (with an Inf in V where the case asks). */
export async function checkVariantCase(attn: SparseAttention, path: VariantPath, { c, infInV }: VariantCase): Promise<void> {
  const { q, k, v } = inputs(c);
  let ref = reference(c);
  if (infInV) {
    v.data[(1 * c.nCtx + c.bs + 1) * c.heads * c.headDim + 3] = Infinity;
    ref = attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, c.options ?? {}, { keyLengths: c.keyLengths }).data;
  }
  const out = await attn.forward(q, k, v, { keyLengths: c.keyLengths });
  expect(attn.lastRun?.backend, attn.lastRun?.reason).toBe('webgpu');
  expectClose(out.data, ref, path.atol, path.rtol, `${path.name} ${describeCase(c)}`);
}
