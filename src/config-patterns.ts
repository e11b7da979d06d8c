// Options of the named block patterns 'longformer' and 'bigbird' (src/layout/named.ts),
// named as DeepSpeed's sparsity configs name them, checked once. Each applies to its mode
// only: given with another mode it is an error, never ignored.
import { argError, checkPositiveInt } from './errors.js';
import type { NamedPatternParams } from './layout/named.js';

export const PATTERN_OPTION_KEYS = [
  'numSlidingWindowBlocks', 'globalBlockIndices', 'globalBlockEndIndices', 'numGlobalBlocks', 'numRandomBlocks',
  'seed', 'differentLayoutPerHead',
] as const;
type PatternKey = (typeof PATTERN_OPTION_KEYS)[number];

export interface PatternOptions {
  /** 'longformer', 'bigbird': blocks of the sliding window, centred (default 3). */
  numSlidingWindowBlocks?: number;
  /** 'longformer': global blocks (default [0]); with globalBlockEndIndices, the starts of global ranges. */
  globalBlockIndices?: readonly number[];
  /** 'longformer': ends (exclusive) of the global ranges, one per start. */
  globalBlockEndIndices?: readonly number[];
  /** 'bigbird': the first numGlobalBlocks blocks are global (default 1). */
  numGlobalBlocks?: number;
  /** 'bigbird': random key blocks per query block (default 1). */
  numRandomBlocks?: number;
  /** 'bigbird': seed of the random blocks, an integer 0 to 2^32 - 1 (default 0). */
  seed?: number;
  /** 'bigbird': a different random layout per head (default false: one for all heads). */
  differentLayoutPerHead?: boolean;
}

const USED: Record<PatternKey, readonly string[]> = {
  numSlidingWindowBlocks: ['longformer', 'bigbird'],
  globalBlockIndices: ['longformer'],
  globalBlockEndIndices: ['longformer'],
  numGlobalBlocks: ['bigbird'],
  numRandomBlocks: ['bigbird'],
  seed: ['bigbird'],
  differentLayoutPerHead: ['bigbird'],
};

function blockList(name: string, x: unknown): number[] {
  if (!Array.isArray(x) && !ArrayBuffer.isView(x)) throw argError(name, 'an array of block indices (integers >= 0)', x);
  const out = Array.from(x as ArrayLike<unknown>);
  out.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw argError(`${name}[${i}]`, 'a block index (an integer >= 0)', v);
  });
  return out as number[];
}

function count(name: string, x: unknown, fallback: number): number {
  if (x === undefined) return fallback;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw argError(name, 'an integer >= 0', x);
  return x;
}

/** The named pattern of mode 'longformer' / 'bigbird' (null for other modes, whose pattern keys must be absent). */
export function readPatternOptions(
  mode: string,
  o: PatternOptions,
  causal: boolean,
): { pattern: NamedPatternParams | null; perHead: boolean } {
  for (const key of PATTERN_OPTION_KEYS) {
    if (o[key] !== undefined && !USED[key].includes(mode)) {
      throw argError(`options.${key}`, `undefined for mode '${mode}' (it applies to ${USED[key].map((m) => `'${m}'`).join(' and ')})`, o[key]);
    }
  }
  if (mode !== 'longformer' && mode !== 'bigbird') return { pattern: null, perHead: false };
  const window = o.numSlidingWindowBlocks === undefined ? 3 : checkPositiveInt('options.numSlidingWindowBlocks', o.numSlidingWindowBlocks);
  const starts = o.globalBlockIndices === undefined ? [0] : blockList('options.globalBlockIndices', o.globalBlockIndices);
  let ends: number[] | null = null;
  if (o.globalBlockEndIndices !== undefined) {
    ends = blockList('options.globalBlockEndIndices', o.globalBlockEndIndices);
    if (ends.length !== starts.length) {
      throw argError('options.globalBlockEndIndices', `one end per start in globalBlockIndices (${starts.length})`, o.globalBlockEndIndices);
    }
    ends.forEach((e, i) => {
      if (e <= starts[i]) throw argError(`options.globalBlockEndIndices[${i}]`, `greater than globalBlockIndices[${i}] (${starts[i]})`, e);
    });
  }
  const seed = o.seed === undefined ? 0 : o.seed;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw argError('options.seed', 'an integer 0 to 2^32 - 1', o.seed);
  }
  const perHead = o.differentLayoutPerHead ?? false;
  if (typeof perHead !== 'boolean') throw argError('options.differentLayoutPerHead', 'a boolean', perHead);
  return {
    pattern: {
      mode,
      numSlidingWindowBlocks: window,
      globalBlockIndices: starts,
      globalBlockEndIndices: ends,
      numGlobalBlocks: count('options.numGlobalBlocks', o.numGlobalBlocks, 1),
      numRandomBlocks: count('options.numRandomBlocks', o.numRandomBlocks, 1),
      seed,
      causal,
    },
    perHead,
  };
}
