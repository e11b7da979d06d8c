// The kernel variants of the forward program (shaders/bsattn_fwd.wgsl), as a table. A name
// says the op, the tile and the features, in the manner of XNNPACK's microkernel names:
//   bsattn_fwd_f32_q128_k64_qtile__subgroups
//   op         type tile      Q     features
// q<BM>_k<BN>: query rows per workgroup × key rows per tile. Q (where the S loop reads it):
// staged once in workgroup memory (no suffix), `qglobal` from the storage buffer, `qtile`
// staged every key tile beside K. `__subgroups`: row reductions by subgroup shuffles;
// `__plain`: through workgroup memory. The call's block size and head dim specialise a
// variant further (program.ts); they do not make a new variant.
//
// The tile choice is the first entry, in table order, that applies to the call (tiles divide
// the block, Q's placement suits the head dim, the workgroup memory fits the device). The
// order is the preference: most work per tile first, among equals taller query tiles (fewer
// K/V reloads); 128-row tiles need Q out of workgroup memory, and shorter tiles with Q staged
// were faster on the H100 and on lavapipe (docs/kernel-history.md, GPU v8 and v9), so Q
// comes from global memory at ≤ 64 rows only when no staged tile fits (large head dims).
// The table holds exactly the tiles that choice can return on some device and shape (checked
// over head dims 1–2048 and workgroup memory 16–256 KiB when it was written), each with and
// without subgroups, plus variants that only tests and benchmarks name (auto: false).
// To add a variant: add its row (a new feature: a flag in the shader's //#param list, set in
// program.ts); test/tiles.test.ts and test/variants.test.ts pick it up from here
// (docs/gpu-kernel.md).

export type QPlacement = 'staged' | 'global' | 'tile';

export interface Variant {
  readonly name: string;
  /** Query rows per workgroup (BM) and key rows per tile (BN); both divide the block. */
  readonly bm: number;
  readonly bn: number;
  /** Where the S loop reads Q (see the shader's Q_GLOBAL and Q_TILE). */
  readonly q: QPlacement;
  readonly subgroups: boolean;
  /** Part of the tile choice; false: only when named (options.webgpu.variant). */
  readonly auto: boolean;
}

/** [BM, BN, Q placement], in the order of preference. */
const TILES: readonly [number, number, QPlacement][] = [
  [128, 64, 'tile'], // the H100's kernel at head dim 64 (48 KiB)
  [128, 64, 'global'],
  [128, 32, 'tile'],
  [128, 32, 'global'], // 32 KiB adapters (lavapipe) at block 128
  [64, 64, 'staged'],
  [128, 16, 'global'],
  [64, 32, 'staged'],
  [128, 8, 'global'],
  [64, 16, 'staged'],
  [32, 32, 'staged'],
  [64, 8, 'staged'],
  [32, 16, 'staged'],
  [32, 8, 'staged'],
  [16, 16, 'staged'],
  [16, 8, 'staged'],
  [8, 8, 'staged'],
  // Q from global memory for head dims whose staged tiles do not fit
  [64, 8, 'global'],
  [32, 8, 'global'],
  [16, 8, 'global'],
  [8, 8, 'tile'],
  [8, 8, 'global'],
];

/**
 * Named only by tests and benchmarks: the H100's Q_TILE kernel at head dim 64 in a shape that
 * fits 32 KiB of workgroup memory, so that lavapipe runs it (its 128×64 does not fit there).
 */
const PINNED: readonly [number, number, QPlacement][] = [[64, 64, 'tile']];

export function variantName(bm: number, bn: number, q: QPlacement, subgroups: boolean): string {
  return `bsattn_fwd_f32_q${bm}_k${bn}${q === 'staged' ? '' : q === 'global' ? '_qglobal' : '_qtile'}__${subgroups ? 'subgroups' : 'plain'}`;
}

const rows = (tiles: readonly [number, number, QPlacement][], auto: boolean): Variant[] =>
  tiles.flatMap(([bm, bn, q]) => [true, false].map((subgroups) => ({ name: variantName(bm, bn, q, subgroups), bm, bn, q, subgroups, auto })));

/** Every variant: the tile choice's, in its order, then the ones only named. */
export const VARIANTS: readonly Variant[] = Object.freeze([...rows(TILES, true), ...rows(PINNED, false)]);

const byName = new Map(VARIANTS.map((v) => [v.name, v]));

export function findVariant(name: string): Variant | undefined {
  return byName.get(name);
}

/** Head dim padded to the kernel's granularity (8 lanes × vec4). */
export function paddedHeadDim(headDim: number): number {
  return Math.ceil(headDim / 32) * 32;
}

/**
 * Workgroup bytes of a variant at a head dim (the budget comment in the shader): Q (staged
 * only), K/P, V, and the row-reduction scratch without subgroups.
 */
export function workgroupBytes(v: Variant, headDim: number): number {
  const dp = paddedHeadDim(headDim);
  return 4 * ((v.q === 'staged' ? v.bm * dp : 0) + Math.max(v.bn * dp, v.bm * v.bn) + v.bn * dp + (v.subgroups ? 0 : v.bm * 8));
}

/**
 * Why a variant cannot run a call (block size bs, head dim, the device's workgroup bytes,
 * whether subgroups may be used), or null when it can.
 */
export function whyNot(v: Variant, bs: number, headDim: number, limitBytes: number, subgroups: boolean): string | null {
  if (bs % v.bm !== 0 || bs % v.bn !== 0) return `its ${v.bm}×${v.bn} tiles do not divide block size ${bs}`;
  if (v.subgroups && !subgroups) return 'it needs subgroups';
  if (v.q !== 'staged' && headDim % 4 !== 0) return `Q from global memory needs a head dim divisible by 4 (got ${headDim})`;
  const dp = paddedHeadDim(headDim);
  if (v.q === 'tile') {
    if (headDim !== dp) return `Q staged per tile needs an unpadded head dim, a multiple of 32 (got ${headDim})`;
    // Q [BM][DP] from QOFF = BN·DP must end within K/P and V: BM·DP <= max(BN·DP, BM·BN)
    if (v.bm * dp > Math.max(v.bn * dp, v.bm * v.bn)) return `Q (${v.bm}×${dp}) does not fit beside K`;
  }
  const bytes = workgroupBytes(v, headDim);
  if (bytes > limitBytes) return `it needs ${bytes} bytes of workgroup memory at head dim ${headDim} (the device has ${limitBytes})`;
  return null;
}

/**
 * The variant for a call: `pinned` (a name from the table) where it applies, else the first
 * automatic variant that applies with subgroups exactly when they may be used; null when none fits.
 */
export function chooseVariant(bs: number, headDim: number, limitBytes: number, subgroups: boolean, pinned?: string): Variant | null {
  const p = pinned === undefined ? undefined : findVariant(pinned);
  if (p && whyNot(p, bs, headDim, limitBytes, subgroups) === null) return p;
  return VARIANTS.find((v) => v.auto && v.subgroups === subgroups && whyNot(v, bs, headDim, limitBytes, subgroups) === null) ?? null;
}

/** Whether 128-row query tiles exist for a head dim (they need Q out of workgroup memory). */
export function tallTilesApply(headDim: number): boolean {
  return VARIANTS.some((v) => v.auto && v.bm === 128 && (v.q === 'staged' || headDim % 4 === 0));
}
