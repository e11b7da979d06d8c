// The forward program: picks the tile shape for a (block size, head dim) on a device,
// instantiates shaders/bsattn_fwd.wgsl with it and caches the compute pipeline.
// Compile-time parameters only (block size, tiles, padded head dim, subgroups) go in the
// cache key; shapes go in the uniform block, so one pipeline serves every shape.
// see: onnxruntime js/web/lib/wasm/jsep/webgpu/ops (shader cache keys)
/// <reference types="@webgpu/types" />
import source from '../../../shaders/bsattn_fwd.wgsl';
import scanSource from '../../../shaders/vscan.wgsl';

export interface Tiles {
  /** Layout block size. */
  bs: number;
  /** Query rows per workgroup and key rows per tile; both divide bs. */
  bm: number;
  bn: number;
  /** Head dim padded to a multiple of 32 (8 lanes × vec4). */
  dp: number;
  /** Query rows per thread: 4, or 8 (bigger register tile, half the threads). */
  rpt: number;
  subgroups: boolean;
  /** Head dim % 4 == 0: tensors bound as vec4 arrays. */
  vec4: boolean;
  /** (vec4 only) store the V tile after S = Q·Kᵀ so its load latency overlaps S. */
  overlapV: boolean;
  /** (vec4 and overlapV only) load the next tile's K and V into registers during this tile. */
  prefetch: boolean;
  /** S = Q·Kᵀ accumulated by explicit fma chains instead of s += dot(q, k). */
  fmaS: boolean;
  /** (vec4 only) Q read from the storage buffer in the S loop, not staged in workgroup memory. */
  qGlobal: boolean;
  /**
   * (qGlobal, prefetch, head dim not padded) Q staged every tile into the workgroup memory K
   * leaves free during S, when it fits there (bm·dp <= max(bn·dp, bm·bn)); no extra memory.
   */
  qTile: boolean;
  /** Head dim < dp (the padding chunks are skipped, not read). */
  padded: boolean;
}

/** Whether Q can be read from global memory (vec4 rows) rather than staged: the kernel then takes 128-row query tiles. */
export function qGlobalApplies(headDim: number, qGlobal: boolean): boolean {
  return headDim % 4 === 0 && qGlobal;
}

/** Workgroup bytes of a tile shape (see the budget comment in the shader). */
export function workgroupBytes(t: Tiles): number {
  const red = t.subgroups ? 0 : t.bm * 8;
  return 4 * ((t.qGlobal ? 0 : t.bm * t.dp) + Math.max(t.bn * t.dp, t.bm * t.bn) + t.bn * t.dp + red);
}

/**
 * Largest tiles that fit the device's workgroup memory, or null when even 8×8 does not.
 * Query tiles of 128 rows need Q read from global memory (prefs.qGlobal, vec4 head dims)
 * and a block size of 128; key tiles stay ≤ 64. Shorter tiles stage Q in workgroup memory;
 * Q from global memory also serves head dims whose staged tiles do not fit.
 */
export function chooseTiles(
  bs: number, headDim: number, limitBytes: number, subgroups: boolean,
  prefs: {
    rpt?: number; maxKeyTile?: number; overlapV?: boolean; prefetch?: boolean; fmaS?: boolean; qGlobal?: boolean;
    /** A tile shape to use where it divides the block and fits (tests, benchmarks). */
    shape?: { bm: number; bn: number; qGlobal: boolean };
  } = {},
): Tiles | null {
  const rpt = prefs.rpt ?? 4;
  const dp = Math.ceil(headDim / 32) * 32;
  const vec4 = headDim % 4 === 0;
  const sizes = [128, 64, 32, 16, 8].filter((x) => x <= bs);
  const keyTiles = sizes.filter((x) => x <= Math.min(64, prefs.maxKeyTile ?? 64));
  const overlapV = vec4 && !!prefs.overlapV;
  const flags = { subgroups, vec4, overlapV, prefetch: overlapV && !!prefs.prefetch, fmaS: !!prefs.fmaS, padded: headDim < dp };
  const global = qGlobalApplies(headDim, !!prefs.qGlobal);
  const qTile = (bm: number, bn: number) => global && flags.prefetch && !flags.padded && bm * dp <= Math.max(bn * dp, bm * bn);
  const tile = (qGlobal: boolean, bm: number, bn: number): Tiles => ({ bs, bm, bn, dp, rpt: Math.min(rpt, bm), ...flags, qGlobal, qTile: qGlobal && qTile(bm, bn) });
  const tiles = (qGlobal: boolean, bms: number[]): Tiles[] => bms.flatMap((bm) => keyTiles.map((bn) => tile(qGlobal, bm, bn)));
  const s = prefs.shape;
  if (s && bs % s.bm === 0 && bs % s.bn === 0 && s.bn <= 64 && (global || !s.qGlobal)) {
    const t = tile(s.qGlobal, s.bm, s.bn);
    if (workgroupBytes(t) <= limitBytes) return t;
  }
  // Q from global memory for 128-row tiles (v9); else Q staged (v8, measured faster at ≤ 64
  // rows on the H100 and on lavapipe), and Q from global memory only when no staged tile fits.
  const first = [...tiles(false, sizes.filter((x) => x <= 64)), ...(global ? tiles(true, sizes.filter((x) => x === 128)) : [])];
  const fallback = global ? tiles(true, sizes.filter((x) => x <= 64)) : [];
  // Most work per tile first; among equals, taller query tiles (fewer K/V reloads).
  const best = (options: Tiles[]) => options.sort((a, b) => b.bm * b.bn - a.bm * a.bn || b.bm - a.bm).find((t) => workgroupBytes(t) <= limitBytes);
  return best(first) ?? best(fallback) ?? null;
}

export function tilesKey(t: Tiles): string {
  return `bs${t.bs}_bm${t.bm}_bn${t.bn}_dp${t.dp}_r${t.rpt}${t.subgroups ? '_sg' : ''}${t.vec4 ? '_v4' : ''}${t.overlapV ? '_ov' : ''}${t.prefetch ? '_pf' : ''}${t.fmaS ? '_fma' : ''}${t.qGlobal ? '_qg' : ''}${t.qTile ? '_qt' : ''}${t.padded ? '_pad' : ''}`;
}

/** The WGSL text for a tile shape: constants rewritten, one branch of each flag kept, tile loops unrolled. */
export function programText(t: Tiles): string {
  const consts: Record<string, number> = { BS: t.bs, BM: t.bm, BN: t.bn, DP: t.dp, RPT: t.rpt };
  let text = source.replace(/^const (BS|BM|BN|DP|RPT): u32 = \d+u;/gm, (_m, name: string) => `const ${name}: u32 = ${consts[name]}u;`);
  const flags: Record<string, boolean> = { SUBGROUPS: t.subgroups, VEC4: t.vec4, OVERLAP_V: t.overlapV, PREFETCH: t.prefetch, FMA_S: t.fmaS, Q_GLOBAL: t.qGlobal, Q_TILE: t.qTile, PADDED: t.padded, P_VEC4: t.bn % 32 === 0 };
  const out: string[] = [];
  const stack: boolean[] = []; // nested //#if branches: a line is kept when all are taken
  for (const line of text.split('\n')) {
    const cond = /^\/\/#if (!?)(\w+)/.exec(line);
    if (cond) stack.push((cond[1] === '!') !== flags[cond[2]]);
    else if (line.startsWith('//#else')) stack.push(!stack.pop());
    else if (line.startsWith('//#endif')) stack.pop();
    else if (stack.every(Boolean)) out.push(line);
  }
  text = unroll(out.join('\n'), {
    RPT: t.rpt, CPT: t.bn / 8, 'CPT / 4u': Math.floor(t.bn / 32), DPT: t.dp / 8, 'DPT / 4u': t.dp / 32, NWB: Math.ceil(t.bn / 32), '4u': 4,
    NVL: Math.ceil((t.bn * t.dp) / 4 / ((t.bm / t.rpt) * 8)), NQL: (t.bm * t.dp) / 4 / ((t.bm / t.rpt) * 8),
    // The chunk-pair loops too, up to 8 pairs (head dims <= 64, every key tile): no buffers
    // carried between iterations, no moves (v9.5: -6.5 % on the H100; ~4,500 more instructions)
    'BN / 8u': t.bn / 8, ...(t.dp <= 64 ? { 'DP / 8u': t.dp / 8 } : {}),
  });
  return t.subgroups ? `enable subgroups;\n${text}` : text;
}

/**
 * Fully unrolls every `for (var x = 0u; x < N; x++) { … }` whose bound N is one of the
 * register-tile sizes: each copy gets x as a literal in its own block. Register arrays
 * (S, O, m_i, l_i) are then only indexed by constants, which drivers keep in registers;
 * a dynamically indexed private array can land in local memory.
 */
export function unroll(text: string, bounds: Record<string, number>): string {
  const names = Object.keys(bounds).map((b) => b.replace(/[/ ]/g, (c) => (c === '/' ? '\\/' : ' ')));
  const header = new RegExp(`for \\(var (\\w+) = 0u; \\1 < (${names.join('|')}); \\1\\+\\+\\) \\{`);
  for (let m = header.exec(text); m; m = header.exec(text)) {
    const open = m.index + m[0].length - 1;
    let depth = 0;
    let close = open;
    for (let i = open; i < text.length; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}' && --depth === 0) {
        close = i;
        break;
      }
    }
    const body = text.slice(open + 1, close);
    const n = bounds[m[2]];
    const v = new RegExp(`\\b${m[1]}\\b`, 'g');
    const copies = Array.from({ length: n }, (_, k) => `{${body.replace(v, `${k}u`)}}`);
    text = text.slice(0, m.index) + copies.join(' ') + text.slice(close + 1);
  }
  return text;
}

/** Pipelines per device: every instance on one device shares them. */
const caches = new WeakMap<GPUDevice, ProgramCache>();

export class ProgramCache {
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private constructor(private readonly device: GPUDevice) {}

  static for(device: GPUDevice): ProgramCache {
    let c = caches.get(device);
    if (!c) caches.set(device, (c = new ProgramCache(device)));
    return c;
  }

  /** The V pre-pass (shaders/vscan.wgsl): flags an Inf or NaN anywhere in V. */
  scan(): Promise<GPUComputePipeline> {
    let p = this.pipelines.get('vscan');
    if (!p) {
      const module = this.device.createShaderModule({ label: 'bsattn_vscan', code: scanSource });
      p = this.device.createComputePipelineAsync({ label: 'bsattn_vscan', layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set('vscan', p);
      p.catch(() => this.pipelines.delete('vscan'));
    }
    return p;
  }

  get(t: Tiles): Promise<GPUComputePipeline> {
    const key = tilesKey(t);
    let p = this.pipelines.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ label: `bsattn_fwd_${key}`, code: programText(t) });
      p = this.device.createComputePipelineAsync({ label: `bsattn_fwd_${key}`, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }
}
