// Constructor arguments of SparseAttention, checked once and normalised. Every rejection
// names the argument, the value received and what was expected.
import { argError, checkPositiveInt, describe } from './errors.js';

export type AttnMode = 'all' | 'local' | 'strided' | 'fixed' | 'custom';
export type BackendName = 'auto' | 'wasm' | 'webgpu';

/**
 * A custom block layout: 1 / true = the key block is visited. Either one matrix
 * [nBlocks][nBlocks] shared by every head, one per head [heads][nBlocks][nBlocks], or a
 * function of (head, queryBlock, keyBlock).
 */
export type CustomLayout =
  | ArrayLike<ArrayLike<number | boolean>>
  | ArrayLike<ArrayLike<ArrayLike<number | boolean>>>
  | ((head: number, queryBlock: number, keyBlock: number) => boolean);

/** Token-level mask inside visited blocks of a custom layout: true = allowed. */
export type TokenMask = (head: number, query: number, key: number) => boolean;

export interface SparseAttentionOptions {
  /** Causal masking for 'all', 'local', 'strided', 'fixed' (default true). */
  causal?: boolean;
  /** Which path computes: 'auto' (default) chooses, 'wasm' / 'webgpu' force one. */
  backend?: BackendName;
  /** A GPUDevice to run the WebGPU path on (else one is requested from the runtime). */
  device?: unknown;
  /** CPU worker threads (default: the machine's cores, at most 8). */
  threads?: number;
  /** 'fixed' mode: number of distinct summary-column patterns across heads (default 1). */
  numVerts?: number;
  /** 'fixed' mode: summary blocks per stride window (default 1). */
  vertsize?: number;
  /** 'custom' mode: the block layout. */
  layout?: CustomLayout;
  /** 'custom' mode: optional token-level mask applied inside visited blocks. */
  mask?: TokenMask;
  /** CPU kernel build: 'relaxed' (FMA), 'simd' or 'scalar' (default: the fastest this runtime validates). */
  wasmVariant?: WasmVariant;
  /** GPU path tuning and test hooks. */
  webgpu?: WebGpuOptions;
}

export interface WebGpuOptions {
  /** Use subgroup shuffles when the adapter has them (default true). */
  subgroups?: boolean;
  /** Cap on one storage binding in bytes, below the device limit (tests of the chunked path). */
  maxBindingBytes?: number;
  /** Time kernels with timestamp queries (forwardGPU; lastRun.gpuMs). */
  timestamps?: boolean;
  /** Query rows per thread of the kernel's register tile: 4 (default) or 8. */
  rowsPerThread?: 4 | 8;
  /** Largest key tile (rows of K/V per step): 64 (default), 32, 16 or 8; smaller uses less workgroup memory. */
  maxKeyTile?: 64 | 32 | 16 | 8;
  /** Store the V tile after S = Q·Kᵀ (its load overlaps S; default true, used when headDim % 4 == 0). */
  overlapV?: boolean;
  /** Load the next K/V tile into registers while this tile computes (default true; needs overlapV). */
  prefetch?: boolean;
  /** Run each sequence's query tiles last to first: causal rows with the most keys start first (default true). */
  longFirst?: boolean;
  /** Accumulate S = Q·Kᵀ with explicit fma chains instead of dot() (default true). */
  fmaS?: boolean;
  /** Read Q from the storage buffer in the S loop instead of workgroup memory, which frees room for 128-row query tiles (default true; vec4 head dims). */
  qGlobal?: boolean;
  /**
   * Tests and benchmarks: a kernel tile shape (query rows, key rows, Q from global memory) to
   * use wherever it divides the layout block and fits the device; elsewhere the automatic choice.
   */
  tileShape?: { bm: 128 | 64 | 32 | 16 | 8; bn: 64 | 32 | 16 | 8; qGlobal: boolean };
  /**
   * Scan V for Inf/NaN first, and run partial tiles' P·V unmasked when it has none (default
   * true; false: always the masked P·V).
   */
  scanV?: boolean;
}

export type WasmVariant = 'relaxed' | 'simd' | 'scalar';

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
  readonly numVerts: number;
  readonly vertsize: number;
  /** Custom layout as a predicate, and the number of blocks it covers (Infinity for functions). */
  readonly customBlocks: ((head: number, qb: number, kb: number) => boolean) | null;
  readonly customBlockCount: number;
  readonly customPerHead: boolean;
  readonly mask: TokenMask | null;
  readonly wasmVariant: WasmVariant | undefined;
  readonly webgpu: WebGpuOptions;
}

const MODES: readonly AttnMode[] = ['all', 'local', 'strided', 'fixed', 'custom'];
const BLOCK_SIZES = [8, 16, 32, 64, 128];
const BACKENDS: readonly BackendName[] = ['auto', 'wasm', 'webgpu'];

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
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw argError('options', 'an object or undefined', options);
  }
  const o = options ?? {};

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
  const backend = o.backend ?? 'auto';
  if (!BACKENDS.includes(backend)) {
    throw argError('options.backend', `one of ${BACKENDS.map((m) => `'${m}'`).join(', ')}`, backend);
  }
  if (o.threads !== undefined) checkPositiveInt('options.threads', o.threads);
  if (o.wasmVariant !== undefined && !['relaxed', 'simd', 'scalar'].includes(o.wasmVariant)) {
    throw argError('options.wasmVariant', "one of 'relaxed', 'simd', 'scalar'", o.wasmVariant);
  }

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

  let customBlocks: Config['customBlocks'] = null;
  let customBlockCount = 0;
  let customPerHead = false;
  let mask: TokenMask | null = null;
  if (mode === 'custom') {
    ({ customBlocks, customBlockCount, customPerHead } = normaliseLayout(o.layout, heads as number));
    if (o.mask !== undefined) {
      if (typeof o.mask !== 'function') throw argError('options.mask', 'a function (head, query, key) => boolean', o.mask);
      mask = o.mask;
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
    numVerts,
    vertsize,
    customBlocks,
    customBlockCount,
    customPerHead,
    mask,
    wasmVariant: o.wasmVariant,
    webgpu: checkWebGpuOptions(o.webgpu),
  };
}

function normaliseLayout(
  layout: unknown,
  heads: number,
): Pick<Config, 'customBlocks' | 'customBlockCount' | 'customPerHead'> {
  const expected = 'a block layout: [nBlocks][nBlocks], [heads][nBlocks][nBlocks] of 0/1, or a function (head, qb, kb) => boolean';
  if (typeof layout === 'function') {
    const fn = layout as (h: number, qb: number, kb: number) => boolean;
    return { customBlocks: (h, qb, kb) => Boolean(fn(h, qb, kb)), customBlockCount: Infinity, customPerHead: true };
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
      out.push(Uint8Array.from(row as ArrayLike<number>, (x) => (x ? 1 : 0)));
    }
    rows.push(out);
  }
  return {
    customBlocks: perHead ? (h, qb, kb) => rows[h][qb][kb] === 1 : (_h, qb, kb) => rows[0][qb][kb] === 1,
    customBlockCount: n,
    customPerHead: perHead,
  };
}

function isArrayLike(x: unknown): x is ArrayLike<unknown> {
  return (Array.isArray(x) || ArrayBuffer.isView(x)) && typeof (x as ArrayLike<unknown>).length === 'number';
}

function checkWebGpuOptions(w: unknown): WebGpuOptions {
  if (w === undefined) return {};
  if (w === null || typeof w !== 'object') throw argError('options.webgpu', 'an object or undefined', w);
  const o = w as WebGpuOptions;
  for (const key of ['subgroups', 'timestamps', 'overlapV', 'prefetch', 'longFirst', 'fmaS', 'scanV', 'qGlobal'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw argError(`options.webgpu.${key}`, 'a boolean', o[key]);
  }
  if (o.maxBindingBytes !== undefined) checkPositiveInt('options.webgpu.maxBindingBytes', o.maxBindingBytes);
  if (o.rowsPerThread !== undefined && o.rowsPerThread !== 4 && o.rowsPerThread !== 8) {
    throw argError('options.webgpu.rowsPerThread', '4 or 8', o.rowsPerThread);
  }
  if (o.tileShape !== undefined) {
    const t = o.tileShape as { bm?: unknown; bn?: unknown; qGlobal?: unknown } | null;
    const ok = typeof t === 'object' && t !== null && [8, 16, 32, 64, 128].includes(t.bm as number) &&
      [8, 16, 32, 64].includes(t.bn as number) && typeof t.qGlobal === 'boolean';
    if (!ok) throw argError('options.webgpu.tileShape', '{ bm: 8..128, bn: 8..64 (powers of 2), qGlobal: boolean }', o.tileShape);
  }
  if (o.maxKeyTile !== undefined && ![8, 16, 32, 64].includes(o.maxKeyTile)) {
    throw argError('options.webgpu.maxKeyTile', 'one of 8, 16, 32, 64', o.maxKeyTile);
  }
  return { ...o };
}
