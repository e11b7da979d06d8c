// Constructor arguments of SparseAttention, checked once and normalised. Every rejection
// names the argument, the value received and what was expected; an unknown option key is an
// error naming the nearest valid one, and an option of a later version is refused until it
// is implemented (NOT_YET_OPTIONS), never silently ignored.
import { ArgumentError, UnsupportedError, argError, asLibraryError, checkPositiveInt, describe } from './errors.js';
import { PATTERN_OPTION_KEYS, type PatternOptions, readPatternOptions } from './config-patterns.js';
import { MODIFIER_OPTION_KEYS, type ModifierOptions, type Modifiers, readModifiers } from './config-mods.js';
import type { NamedPatternParams } from './layout/named.js';
import {
  type BlockMaskSource, type BlockMasks, type FlexBlockLayout, type ImportedLayout, type OnnxSparseLayout,
  importFormat, readBlockMasks, readFlexLayout, readOnnxLayout,
} from './layout/custom.js';
import { VARIANTS, findVariant } from './backends/webgpu/variants.js';

export type AttnMode = 'all' | 'local' | 'strided' | 'fixed' | 'longformer' | 'bigbird' | 'custom';
export type BackendName = 'auto' | 'wasm' | 'webgpu';

export type { BlockMasks, FlexBlockLayout, OnnxSparseLayout } from './layout/custom.js';

/**
 * A custom block layout: 1 / true = the key block is visited. Either one matrix
 * [nBlocks][nBlocks] shared by every head, one per head [heads][nBlocks][nBlocks], a
 * function of (head, queryBlock, keyBlock), or block lists imported from ONNX Runtime's
 * SparseAttention or FlexAttention's BlockMask (src/layout/custom.ts).
 */
export type CustomLayout =
  | ArrayLike<ArrayLike<number | boolean>>
  | ArrayLike<ArrayLike<ArrayLike<number | boolean>>>
  | ((head: number, queryBlock: number, keyBlock: number) => boolean | 0 | 1)
  | OnnxSparseLayout
  | FlexBlockLayout;

/** Token-level mask inside visited blocks of a custom layout: true (or 1) = allowed. */
export type TokenMask = (head: number, query: number, key: number) => boolean | 0 | 1;

export interface SparseAttentionOptions extends PatternOptions, ModifierOptions {
  /**
   * Heads of K and V (grouped-query attention; 1: multi-query), a divisor of heads (default
   * heads): k and v are [batch, nK, kvHeads · headDim]; query head h reads K/V head
   * floor(h · kvHeads / heads). CPU path (the GPU path runs kvHeads = heads only).
   */
  kvHeads?: number;
  /** Causal masking for 'all', 'local', 'strided', 'fixed', 'longformer', 'bigbird' (default true). */
  causal?: boolean;
  /** Which path computes: 'auto' (default) chooses, 'wasm' / 'webgpu' force one. */
  backend?: BackendName;
  /** A GPUDevice to run the WebGPU path on (else one is requested from the runtime). */
  device?: unknown;
  /** CPU worker threads, an integer 1 to 64 (default: the machine's cores, at most 8). */
  threads?: number;
  /** 'fixed' mode: number of distinct summary-column patterns across heads (default 1). */
  numVerts?: number;
  /** 'fixed' mode: summary blocks per stride window (default 1). */
  vertsize?: number;
  /** 'custom' mode: the block layout. */
  layout?: CustomLayout;
  /** 'custom' mode: optional token-level mask inside visited blocks, per pair or per block ({ blocks, select }). */
  mask?: TokenMask | BlockMasks;
  /** CPU kernel build: 'relaxed' (FMA), 'simd' or 'scalar' (default: the fastest this runtime validates). */
  wasmVariant?: WasmVariant;
  /**
   * Storage of q, k, v, the output and a KV cache (default 'float32'). 'float16': IEEE halves,
   * as a Float16Array where the runtime has one, else a Uint16Array of half bits; the result
   * has q's type. Compute (products, softmax, sums) stays f32. Both paths (the GPU's: f16
   * storage arrays with shader-f16, else u32 words of two halves; docs/gpu-kernel.md).
   */
  dtype?: Dtype;
  /** GPU path tuning and test hooks. */
  webgpu?: WebGpuOptions;
}

export interface WebGpuOptions {
  /** Use subgroup shuffles when the adapter has them (default true). */
  subgroups?: boolean;
  /** Cap on one storage binding in bytes, below the device limit (tests of the chunked path); 16 to 2^32. */
  maxBindingBytes?: number;
  /** Time kernels with timestamp queries (forwardGPU; lastRun.gpuMs). */
  timestamps?: boolean;
  /**
   * @internal Tests and benchmarks: the name of a kernel variant (src/backends/webgpu/variants.ts,
   * e.g. 'bsattn_fwd_f32_q64_k64_qtile__subgroups') to run wherever it applies (its tiles divide
   * the block, its Q placement suits the head dim, it fits the device); elsewhere the automatic choice.
   */
  variant?: string;
  /**
   * @internal Tests: false skips the pre-pass that scans V for Inf/NaN, so that partial tiles
   * always take the masked P·V (default true: they run it unmasked when V is finite).
   */
  scanV?: boolean;
  /**
   * @internal Tests and benchmarks: flash-decoding's key splits for decode shapes (few queries,
   * many keys): 0 runs them on the forward program instead; default: chosen per call.
   */
  decodeSplits?: number;
  /**
   * @internal Benchmarks: forwardGPU dispatches its kernels this many times in one compute pass
   * and lastRun.gpuMs is the pass's time divided by it (timestamps too coarse for one call).
   */
  repeat?: number;
}

export type WasmVariant = 'relaxed' | 'simd' | 'scalar';
export type Dtype = 'float32' | 'float16';

export interface Config {
  readonly heads: number;
  readonly mode: AttnMode;
  /** L: window for 'local', stride for 'strided' and 'fixed'; 0 where unused. */
  readonly localAttnCtx: number;
  readonly blocksize: number;
  readonly causal: boolean;
  readonly backend: BackendName;
  readonly device: unknown;
  readonly threads: number | undefined;
  /** Heads of K and V (GQA/MQA; default heads): query head h reads K/V head floor(h · kvHeads / heads). */
  readonly kvHeads: number;
  readonly numVerts: number;
  readonly vertsize: number;
  /** Custom layout as a predicate, and the number of blocks it covers (Infinity for functions). */
  readonly customBlocks: ((head: number, qb: number, kb: number) => boolean) | null;
  readonly customBlockCount: number;
  readonly customPerHead: boolean;
  /** A custom layout imported from ONNX Runtime's or FlexAttention's block lists (then customBlocks is null). */
  readonly customImport: ImportedLayout | null;
  /** The user's token mask, wrapped: returns a boolean, throws an ArgumentError on any other value. */
  readonly mask: ((head: number, query: number, key: number) => boolean) | null;
  /** The user's token mask given per block ({ blocks, select }), checked. */
  readonly maskBlocks: BlockMaskSource | null;
  /** 'longformer' / 'bigbird': the block pattern (src/layout/named.ts); else null. */
  readonly pattern: NamedPatternParams | null;
  /** 'bigbird': one random layout per head (differentLayoutPerHead). */
  readonly patternPerHead: boolean;
  readonly wasmVariant: WasmVariant | undefined;
  readonly webgpu: WebGpuOptions;
  /** Storage of q, k, v, out and the cache; compute is f32 either way. */
  readonly dtype: Dtype;
  /** Score modifiers: scale, softcap, ALiBi slopes, sinks (src/config-mods.ts). */
  readonly mods: Modifiers;
}

const MODES: readonly AttnMode[] = ['all', 'local', 'strided', 'fixed', 'longformer', 'bigbird', 'custom'];
const BLOCK_SIZES = [8, 16, 32, 64, 128];
const BACKENDS: readonly BackendName[] = ['auto', 'wasm', 'webgpu'];

/** Constructor option keys implemented today (order: as the README's Options table). */
export const OPTION_KEYS = [
  'causal', 'kvHeads', 'backend', 'device', 'threads', 'numVerts', 'vertsize', ...PATTERN_OPTION_KEYS, 'layout', 'mask', 'wasmVariant', 'dtype', 'webgpu',
  ...MODIFIER_OPTION_KEYS,
] as const;
/**
 * Constructor options of the round-2 contract (DESIGN.md §2, issues 17 and 18) that are not
 * implemented yet: giving one is an UnsupportedError, since ignoring it would compute a
 * different function than asked. Move a key to OPTION_KEYS when its feature lands.
 */
export const NOT_YET_OPTIONS: readonly string[] = [];
/** Forward call option keys implemented today, for checkKeys in the facade. */
export const FORWARD_OPTION_KEYS: readonly string[] = ['keyLengths', 'seqLengths', 'signal', 'out', 'onProgress', 'cache', 'lse'];
/** Forward call options of the round-2 contract not implemented yet (move each when it lands). */
export const NOT_YET_FORWARD_OPTIONS: readonly string[] = [];
const WEBGPU_KEYS: readonly (keyof WebGpuOptions)[] = ['subgroups', 'timestamps', 'maxBindingBytes', 'variant', 'scanV', 'decodeSplits', 'repeat'];
const WEBGPU_BOOLEANS = ['subgroups', 'timestamps', 'scanV'] as const;

/**
 * Upper bound of options.threads. Each worker costs ~8.5 MiB and ~60 ms to start (measured
 * for issue 15) and threads beyond the cores buy nothing (the default is min(cores, 8)); a
 * typo such as 1e6 must fail here, not after minutes of spawning.
 */
export const MAX_THREADS = 64;
/** options.webgpu.maxBindingBytes: one vec4<f32> (bindings are sized in 16-byte units) to 2^32. */
export const MIN_BINDING_BYTES = 16;
export const MAX_BINDING_BYTES = 2 ** 32;

export function makeConfig(
  heads: unknown,
  attnMode: unknown,
  localAttnCtx: unknown,
  blocksize: unknown,
  options: SparseAttentionOptions | undefined,
): Config {
  checkPositiveInt('heads', heads);
  if (typeof attnMode !== 'string' || !MODES.includes(attnMode as AttnMode)) {
    throw argError('attnMode', `one of ${MODES.map((m) => `'${m}'`).join(', ')}`, attnMode);
  }
  const mode = attnMode as AttnMode;
  if (blocksize === undefined) blocksize = 32;
  if (typeof blocksize !== 'number' || !BLOCK_SIZES.includes(blocksize)) {
    throw argError('blocksize', `one of ${BLOCK_SIZES.join(', ')}`, blocksize);
  }
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw argError('options', 'an object or undefined', options);
  }
  // One read of each option (a getter runs once); everything below uses this snapshot.
  const o = checkKeys('options', options ?? {}, OPTION_KEYS, NOT_YET_OPTIONS) as SparseAttentionOptions;

  let L = 0;
  if (mode === 'local' || mode === 'strided' || mode === 'fixed') {
    L = checkPositiveInt('localAttnCtx', localAttnCtx, ` for mode '${mode}'`);
  } else if (localAttnCtx !== undefined && localAttnCtx !== null) {
    // 'all' ignores it (the seed passes 32 with 'all') but a given value must still be sane.
    if (mode === 'all') checkPositiveInt('localAttnCtx', localAttnCtx, ` or undefined for mode 'all'`);
    else throw argError('localAttnCtx', `undefined for mode '${mode}'`, localAttnCtx);
  }

  const causal = o.causal ?? true;
  if (typeof causal !== 'boolean') throw argError('options.causal', 'a boolean', causal);
  if (mode === 'custom' && o.causal !== undefined) {
    // A causal flag would be ignored here: the layout and mask alone decide what is allowed.
    throw argError('options.causal', "undefined for mode 'custom' (the layout and mask decide what is allowed)", o.causal);
  }
  const kvHeads = o.kvHeads === undefined ? (heads as number) : checkPositiveInt('options.kvHeads', o.kvHeads);
  if ((heads as number) % kvHeads !== 0) throw argError('options.kvHeads', `a divisor of heads (${heads})`, kvHeads);
  const backend = o.backend ?? 'auto';
  if (!BACKENDS.includes(backend)) {
    throw argError('options.backend', `one of ${BACKENDS.map((m) => `'${m}'`).join(', ')}`, backend);
  }
  if (o.threads !== undefined) {
    checkPositiveInt('options.threads', o.threads);
    if (o.threads > MAX_THREADS) {
      throw argError('options.threads', `at most ${MAX_THREADS} (each worker costs ~8.5 MiB and ~60 ms to start; more than the cores buys nothing)`, o.threads);
    }
  }
  if (o.wasmVariant !== undefined && !['relaxed', 'simd', 'scalar'].includes(o.wasmVariant)) {
    throw argError('options.wasmVariant', "one of 'relaxed', 'simd', 'scalar'", o.wasmVariant);
  }
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16') throw argError('options.dtype', "'float32' or 'float16'", o.dtype);

  let numVerts = 1;
  let vertsize = 1;
  if (mode === 'fixed') {
    numVerts = o.numVerts === undefined ? 1 : checkPositiveInt('options.numVerts', o.numVerts);
    vertsize = o.vertsize === undefined ? 1 : checkPositiveInt('options.vertsize', o.vertsize);
    if (L % blocksize !== 0) {
      throw argError('localAttnCtx', `a multiple of blocksize (${blocksize}) for mode 'fixed'`, L);
    }
    const stride = L / blocksize;
    if (stride % vertsize !== 0) {
      throw argError('options.vertsize', `a divisor of localAttnCtx / blocksize (${stride}) for mode 'fixed'`, vertsize);
    }
    if (numVerts * vertsize > stride) {
      throw argError(
        'options.numVerts',
        `at most localAttnCtx / blocksize / vertsize (${stride / vertsize}) for mode 'fixed'`,
        numVerts,
      );
    }
    if ((heads as number) % numVerts !== 0) {
      throw argError('options.numVerts', `a divisor of heads (${heads}) for mode 'fixed'`, numVerts);
    }
  } else {
    for (const key of ['numVerts', 'vertsize'] as const) {
      if (o[key] !== undefined) throw argError(`options.${key}`, `undefined for mode '${mode}' (it applies to 'fixed')`, o[key]);
    }
  }

  const { pattern, perHead: patternPerHead } = readPatternOptions(mode, o, causal);

  let customBlocks: Config['customBlocks'] = null;
  let customBlockCount = 0;
  let customPerHead = false;
  let customImport: ImportedLayout | null = null;
  let mask: Config['mask'] = null;
  let maskBlocks: BlockMaskSource | null = null;
  if (mode === 'custom') {
    const format = importFormat(o.layout);
    if (format) {
      const layout = o.layout as object;
      customImport = format === 'onnxruntime' ? readOnnxLayout(layout, heads as number) : readFlexLayout(layout, heads as number, blocksize);
      customBlockCount = Math.min(customImport.rows, customImport.cols);
      customPerHead = customImport.heads.length > 1;
    } else {
      ({ customBlocks, customBlockCount, customPerHead } = normaliseLayout(o.layout, heads as number));
    }
    if (typeof o.mask === 'function') {
      mask = checkedPredicate(o.mask, 'options.mask', ['head', 'query', 'key']);
    } else if (o.mask !== undefined) {
      if (o.mask === null || typeof o.mask !== 'object') {
        throw argError('options.mask', 'a function (head, query, key) => boolean or block masks { blocks, select }', o.mask);
      }
      maskBlocks = readBlockMasks(o.mask, blocksize);
    }
  } else {
    if (o.layout !== undefined) throw argError('options.layout', `undefined for mode '${mode}' (use mode 'custom')`, o.layout);
    if (o.mask !== undefined) throw argError('options.mask', `undefined for mode '${mode}' (use mode 'custom')`, o.mask);
  }

  return {
    heads: heads as number,
    mode,
    localAttnCtx: L,
    blocksize,
    causal,
    backend,
    device: o.device,
    threads: o.threads,
    kvHeads,
    numVerts,
    vertsize,
    customBlocks,
    customBlockCount,
    customPerHead,
    customImport,
    mask,
    maskBlocks,
    pattern,
    patternPerHead,
    wasmVariant: o.wasmVariant,
    webgpu: checkWebGpuOptions(o.webgpu),
    dtype,
    mods: readModifiers(o, heads as number),
  };
}

function normaliseLayout(
  layout: unknown,
  heads: number,
): Pick<Config, 'customBlocks' | 'customBlockCount' | 'customPerHead'> {
  const expected =
    'a block layout: [nBlocks][nBlocks], [heads][nBlocks][nBlocks] of 0/1, a function (head, qb, kb) => boolean, ' +
    'ONNX Runtime block lists { blockRowIndices, blockColIndices } or FlexAttention ones { kvNumBlocks, kvIndices, shape }';
  if (typeof layout === 'function') {
    const fn = checkedPredicate(layout as TokenMask, 'options.layout', ['head', 'queryBlock', 'keyBlock']);
    return { customBlocks: fn, customBlockCount: Infinity, customPerHead: true };
  }
  if (!isArrayLike(layout) || layout.length === 0) throw argError('options.layout', expected, layout);
  const first = layout[0];
  if (!isArrayLike(first)) throw argError('options.layout', expected, layout);
  const perHead = isArrayLike(first[0]);
  const matrices = (perHead ? Array.from(layout) : [layout]) as ArrayLike<ArrayLike<unknown>>[];
  if (perHead && matrices.length !== heads) {
    throw argError('options.layout', `one matrix per head (${heads}) when given per head`, `${matrices.length} matrices`);
  }
  const n = matrices[0].length;
  const rows: Uint8Array[][] = [];
  for (let h = 0; h < matrices.length; h++) {
    const m = matrices[h];
    if (!isArrayLike(m) || m.length !== n) {
      throw argError('options.layout', `square matrices of one size (${n}×${n})`, describe(m));
    }
    const out: Uint8Array[] = [];
    for (let qb = 0; qb < n; qb++) {
      const row = m[qb] as ArrayLike<unknown>;
      if (!isArrayLike(row) || row.length !== n) {
        throw argError(`options.layout${perHead ? `[${h}]` : ''}[${qb}]`, `a row of ${n} entries`, row);
      }
      const at = `options.layout${perHead ? `[${h}]` : ''}[${qb}]`;
      out.push(Uint8Array.from(row as ArrayLike<unknown>, (x, kb) => blockFlag(x, `${at}[${kb}]`)));
    }
    rows.push(out);
  }
  return {
    customBlocks: perHead ? (h, qb, kb) => rows[h][qb][kb] === 1 : (_h, qb, kb) => rows[0][qb][kb] === 1,
    customBlockCount: n,
    customPerHead: perHead,
  };
}

/** A layout entry as 0/1: only the numbers 0 and 1 and the booleans are layout values. */
function blockFlag(x: unknown, at: string): 0 | 1 {
  if (x === 1 || x === true) return 1;
  if (x === 0 || x === false) return 0;
  throw argError(at, '0, 1, true or false', x);
}

/**
 * Wraps a user predicate (a layout or mask function) so that it returns a boolean: true/1
 * and false/0 are its only accepted results, anything else ('false', 2, undefined…) is an
 * ArgumentError naming the call; an exception it throws becomes one too, with it as cause.
 */
function checkedPredicate(fn: TokenMask, name: string, params: readonly [string, string, string]) {
  const call = (a: number, b: number, c: number) => `${name}(${params[0]} ${a}, ${params[1]} ${b}, ${params[2]} ${c})`;
  return (a: number, b: number, c: number): boolean => {
    let r: unknown;
    try {
      r = fn(a, b, c);
    } catch (e) {
      throw new ArgumentError(`${call(a, b, c)} threw: ${e instanceof Error ? e.message : describe(e)}`, { cause: e });
    }
    if (r === true || r === 1) return true;
    if (r === false || r === 0) return false;
    throw new ArgumentError(`${call(a, b, c)} must return true, false, 1 or 0 (got ${describe(r)})`);
  };
}

function isArrayLike(x: unknown): x is ArrayLike<unknown> {
  return (Array.isArray(x) || ArrayBuffer.isView(x)) && typeof (x as ArrayLike<unknown>).length === 'number';
}

function checkWebGpuOptions(w: unknown): WebGpuOptions {
  if (w === undefined) return {};
  if (w === null || typeof w !== 'object' || Array.isArray(w)) throw argError('options.webgpu', 'an object or undefined', w);
  const o = checkKeys('options.webgpu', w, WEBGPU_KEYS) as WebGpuOptions;
  for (const key of WEBGPU_BOOLEANS) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw argError(`options.webgpu.${key}`, 'a boolean', o[key]);
  }
  if (o.maxBindingBytes !== undefined) {
    checkPositiveInt('options.webgpu.maxBindingBytes', o.maxBindingBytes);
    if (o.maxBindingBytes < MIN_BINDING_BYTES || o.maxBindingBytes > MAX_BINDING_BYTES) {
      throw argError('options.webgpu.maxBindingBytes', `from ${MIN_BINDING_BYTES} (one vec4<f32>) to 2^32 bytes`, o.maxBindingBytes);
    }
  }
  if (o.decodeSplits !== undefined && (!Number.isInteger(o.decodeSplits) || o.decodeSplits < 0 || o.decodeSplits > 4096)) {
    throw argError('options.webgpu.decodeSplits', 'an integer from 0 to 4096', o.decodeSplits);
  }
  if (o.repeat !== undefined && (!Number.isInteger(o.repeat) || o.repeat < 1 || o.repeat > 10000)) {
    throw argError('options.webgpu.repeat', 'an integer from 1 to 10000', o.repeat);
  }
  if (o.variant !== undefined && (typeof o.variant !== 'string' || !findVariant(o.variant))) {
    const near = typeof o.variant === 'string' ? nearestName(o.variant, VARIANTS.map((v) => v.name)) : null;
    throw argError('options.webgpu.variant', `a kernel variant's name (src/backends/webgpu/variants.ts)${near ? `; did you mean '${near}'?` : ''}`, o.variant);
  }
  return o;
}

/**
 * Checks an options object's own keys and returns a snapshot of it (each property read
 * once, so a getter cannot answer differently later). A key not in `valid` is an
 * ArgumentError naming it, the nearest valid name when one is close, and the valid names;
 * a key in `notYet` (valid in a later version) with a value other than undefined is an
 * UnsupportedError. `objName` prefixes the key in messages: checkKeys('options', …) says
 * "options.thread is not an option; did you mean 'threads'? (valid: …)".
 */
export function checkKeys(
  objName: string,
  obj: object,
  valid: readonly string[],
  notYet: readonly string[] = [],
): Record<string, unknown> {
  let keys: string[];
  try {
    keys = Object.keys(obj);
  } catch (e) {
    throw asLibraryError(e, objName);
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    let value: unknown;
    try {
      value = (obj as Record<string, unknown>)[key];
    } catch (e) {
      throw asLibraryError(e, `${objName}.${key}`);
    }
    if (valid.includes(key)) {
      out[key] = value;
      continue;
    }
    if (notYet.includes(key)) {
      if (value === undefined) continue;
      throw new UnsupportedError(`${objName}.${key} is not supported yet (got ${describe(value)})`);
    }
    const near = nearestName(key, [...valid, ...notYet]);
    const hint = near === null ? '' : `; did you mean '${near}'${notYet.includes(near) ? ' (not supported yet)' : ''}?`;
    throw new ArgumentError(`${objName}.${key} is not an option${hint} (valid: ${valid.join(', ')})`);
  }
  return out;
}

/**
 * The candidate closest to `name` by optimal-string-alignment distance (Damerau–Levenshtein
 * with adjacent transpositions, ignoring case), or null when none is within
 * max(2, ⌈length/3⌉) edits — a suggestion further away would only mislead.
 */
export function nearestName(name: string, candidates: readonly string[]): string | null {
  const limit = Math.max(2, Math.ceil(name.length / 3));
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= limit ? best : null;
}

function editDistance(a: string, b: string): number {
  // d[i][j]: edits turning a[0, i) into b[0, j); three rows suffice for the transposition.
  let prev2 = new Array<number>(b.length + 1).fill(0);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      cur.push(d);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[b.length];
}
