// The forward program: a kernel variant (variants.ts) specialised to a call's block size and
// head dim, its WGSL text (shaders/bsattn_fwd.wgsl through the preprocessor) and the cached
// compute pipeline. The cache key is the program's name: the variant's name and the block
// size and head dim it was specialised to (compile-time parameters only); shapes go in the
// uniform block, so one pipeline serves every shape.
// see: onnxruntime js/web/lib/wasm/jsep/webgpu/program-manager.ts (ProgramInfo name + cache hint)
/// <reference types="@webgpu/types" />
import source from '../../../shaders/bsattn_fwd.wgsl';
import scanSource from '../../../shaders/vscan.wgsl';
import decodeSource from '../../../shaders/bsattn_decode.wgsl';
import combineSource from '../../../shaders/bsattn_combine.wgsl';
import { preprocess } from './preprocess.js';
import { type Variant, paddedHeadDim } from './variants.js';

/**
 * How a program stores q, k, v and o (compute is f32 in every form): `f32`; `f16`, IEEE
 * halves in f16 storage arrays (`enable f16;`, adapters with the shader-f16 feature); `f16x2`,
 * the same halves read as u32 words of two with core WGSL's unpack2x16float and written with
 * pack2x16float (every adapter). Names: the f32 programs' names are unchanged; the half forms
 * append `_f16` or `_f16x2`.
 */
export type Storage = 'f32' | 'f16' | 'f16x2';

/** The shader flags of a storage form (the templates' F16 and F16_NATIVE). */
function storageFlags(storage: Storage): { F16: boolean; F16_NATIVE: boolean } {
  return { F16: storage !== 'f32', F16_NATIVE: storage === 'f16' };
}

/** A program's text with the `enable` directives its storage and subgroups need. */
function withEnables(text: string, storage: Storage, subgroups: boolean): string {
  return `${storage === 'f16' ? 'enable f16;\n' : ''}${subgroups ? 'enable subgroups;\n' : ''}${text}`;
}

/** The name suffix of a storage form: none for f32. */
function storageSuffix(storage: Storage): string {
  return storage === 'f32' ? '' : `_${storage}`;
}

/** A variant specialised to a call: what one pipeline is compiled for. */
export interface Program {
  variant: Variant;
  /** Layout block size. */
  bs: number;
  headDim: number;
  /** Inference shapes (the shader's XATTN): kvHeads < heads, nQ != nK, a KV cache. */
  xattn?: boolean;
  /** Score modifiers and the lse output (the shader's MODS), set by uniforms. */
  mods?: boolean;
  /**
   * The chunk-pair loops (S over head-dim pairs, P·V over key pairs) left as loops. Software
   * adapters take it (ProgramCache): lavapipe's LLVM spent 14 s on the unrolled pairs of the
   * lavapipe kernel (q128_k32_qglobal, head dim 64) and 2.2 s with them rolled, and ran the
   * two equally fast (2048 keys × 4 heads: 398–436 ms either way, docs/gpu-kernel.md).
   */
  rolledPairs?: boolean;
  /** The tensors' storage (default f32). */
  storage?: Storage;
}

const RPT = 4; // query rows per thread (the shader's RPT)
const TPR = 8; // threads per row group (the shader's TPR)

/** The program's name, its pipeline cache key: `<variant>:bs<block>_dp<padded head dim>[_scalar][_padded][_xattn][_mods][_rolled][_f16|_f16x2]`. */
export function programName(p: Program): string {
  const dp = paddedHeadDim(p.headDim);
  return `${p.variant.name}:bs${p.bs}_dp${dp}${p.headDim % 4 === 0 ? '' : '_scalar'}${p.headDim < dp ? '_padded' : ''}${p.xattn ? '_xattn' : ''}${p.mods ? '_mods' : ''}${p.rolledPairs ? '_rolled' : ''}${storageSuffix(p.storage ?? 'f32')}`;
}

/** The WGSL text of a program: the template's constants and flags set, stages inlined, tile loops unrolled. */
export function programText(p: Program): string {
  const { bm, bn } = p.variant;
  const dp = paddedHeadDim(p.headDim);
  const wg = (bm / RPT) * TPR;
  const text = preprocess(source, {
    consts: { BS: p.bs, BM: bm, BN: bn, DP: dp },
    flags: {
      SUBGROUPS: p.variant.subgroups,
      VEC4: p.headDim % 4 === 0,
      Q_GLOBAL: p.variant.q !== 'staged',
      Q_TILE: p.variant.q === 'tile',
      PADDED: p.headDim < dp,
      P_VEC4: bn % 32 === 0,
      XATTN: p.xattn === true,
      MODS: p.mods === true,
      ...storageFlags(p.storage ?? 'f32'),
    },
    unroll: {
      RPT, CPT: bn / TPR, 'CPT / 4u': Math.floor(bn / 32), DPT: dp / TPR, 'DPT / 4u': dp / 32, NWB: Math.ceil(bn / 32), '4u': 4,
      NVL: Math.ceil((bn * dp) / 4 / wg), NQL: (bm * dp) / 4 / wg,
      // The chunk-pair loops too, up to head dim 64 for S (16 copies at 128 would be too much
      // code) and always for P·V (BN <= 64): nothing is carried from one pair to the next, and
      // the compiler schedules loads across the whole tile (-6.5% on the H100 at head dim 64).
      ...(p.rolledPairs ? {} : { 'BN / 8u': bn / 8, ...(dp <= 64 ? { 'DP / 8u': dp / 8 } : {}) }),
    },
  });
  return withEnables(text, p.storage ?? 'f32', p.variant.subgroups);
}

/**
 * Lanes per key of the flash-decoding program: 16 from head dim 128 where they split it into
 * whole vec4s (DV = dp / 64 a lane), else 8 (every padded head dim is a multiple of 32: a
 * head dim of 160 takes 8 lanes of 5 vec4s).
 */
export function decodeLanes(dp: number): number {
  return dp >= 128 && dp % 64 === 0 ? 16 : 8;
}

/**
 * Rows (query head × query pairs) per workgroup of the flash-decoding program at a padded
 * head dim: RM · DV vec4s of O (and of Q) per lane stay at 8 (32 registers each), at most 8
 * rows: 4 at head dim 128 (the 4 query heads of a K/V head at 32/8), 8 at 32.
 */
export function decodeRows(dp: number): number {
  const dv = dp / (4 * decodeLanes(dp));
  return Math.max(1, Math.min(8, Math.floor(8 / dv)));
}

/** The flash-decoding program's name: `bsattn_decode_f32_dp<padded head dim>_r<rows>_l<lanes>__<subgroups|plain>[_mods][_rolled][_f16|_f16x2]`. */
export function decodeName(dp: number, subgroups: boolean, mods = false, rolledRows = false, storage: Storage = 'f32'): string {
  return `bsattn_decode_f32_dp${dp}_r${decodeRows(dp)}_l${decodeLanes(dp)}__${subgroups ? 'subgroups' : 'plain'}${mods ? '_mods' : ''}${rolledRows ? '_rolled' : ''}${storageSuffix(storage)}`;
}

/**
 * The WGSL of the flash-decoding program (shaders/bsattn_decode.wgsl) for a padded head dim.
 * `rolledRows`: the loops over the RM rows stay loops (software adapters, see ProgramCache):
 * lavapipe's LLVM took 8.9 s on the 8-row program at head dim 32 unrolled and 1.2 s rolled,
 * which then ran a decode step over 8K keys in 8.2 ms instead of 6.2 (4/2 heads); on such an
 * adapter the CPU path decodes faster still, so the first call's latency is what counts.
 */
export function decodeText(dp: number, subgroups: boolean, mods = false, rolledRows = false, storage: Storage = 'f32'): string {
  const text = preprocess(decodeSource, {
    consts: { DP: dp, RM: decodeRows(dp), TPK: decodeLanes(dp) },
    flags: { SUBGROUPS: subgroups, MODS: mods, ...storageFlags(storage) },
    unroll: { ...(rolledRows ? {} : { RM: decodeRows(dp) }), DV: dp / (4 * decodeLanes(dp)), U: 2 },
  });
  return withEnables(text, storage, subgroups);
}

/** The WGSL of flash-decoding's combine pass (shaders/bsattn_combine.wgsl); `half`: o holds halves (u32 words: one text for both half forms). */
export function combineText(mods: boolean, half = false): string {
  return preprocess(combineSource, { flags: { MODS: mods, F16: half } });
}

/** The WGSL of the V pre-pass (shaders/vscan.wgsl); `half`: V holds halves. */
export function scanText(half = false): string {
  return preprocess(scanSource, { flags: { HALF: half } });
}

/**
 * Test-only (src/testing.ts): `fullUnroll` gives software adapters the hardware's program
 * texts (forward and flash-decoding); `noShaderF16` makes half calls take the f16x2 form (u32
 * words) even where the device has shader-f16, so that one adapter runs both.
 */
export const programTesting = { fullUnroll: false, noShaderF16: false };

/** Pipelines per device: every instance on one device shares them. */
const caches = new WeakMap<GPUDevice, ProgramCache>();

export class ProgramCache {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  /** `software`: the adapter compiles on the CPU (lavapipe, SwiftShader): see Program.rolledPairs. */
  private constructor(private readonly device: GPUDevice, private readonly software: boolean) {}

  static for(device: GPUDevice, software: boolean): ProgramCache {
    let c = caches.get(device);
    if (!c) caches.set(device, (c = new ProgramCache(device, software)));
    return c;
  }

  /** The V pre-pass (shaders/vscan.wgsl): flags an Inf or NaN anywhere in V. */
  scan(half = false): Promise<GPUComputePipeline> {
    return this.pipeline(half ? 'bsattn_vscan_f16x2' : 'bsattn_vscan', () => scanText(half));
  }

  /** Flash-decoding: the split kernel for a padded head dim, and the combine pass. */
  decode(dp: number, subgroups: boolean, mods = false, storage: Storage = 'f32'): Promise<GPUComputePipeline> {
    const rolled = this.rolled();
    return this.pipeline(decodeName(dp, subgroups, mods, rolled, storage), () => decodeText(dp, subgroups, mods, rolled, storage));
  }

  /** `mods`: with sinks and the lse output (the shader's MODS); `half`: o holds halves. */
  combine(mods = false, half = false): Promise<GPUComputePipeline> {
    return this.pipeline(`bsattn_combine${mods ? '_mods' : ''}${half ? '_f16x2' : ''}`, () => combineText(mods, half));
  }

  get(p: Program): Promise<GPUComputePipeline> {
    const q: Program = { ...p, rolledPairs: p.rolledPairs ?? this.rolled() };
    return this.pipeline(programName(q), () => programText(q));
  }

  /** Software adapters compile on the CPU: their texts keep the loops whose unrolling costs the most LLVM time. */
  private rolled(): boolean {
    return this.software && !programTesting.fullUnroll;
  }

  private pipeline(name: string, code: () => string): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(name);
    if (!p) {
      const module = this.device.createShaderModule({ label: name, code: code() });
      p = this.device.createComputePipelineAsync({ label: name, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(name, p);
      p.catch(() => this.pipelines.delete(name));
    }
    return p;
  }
}
