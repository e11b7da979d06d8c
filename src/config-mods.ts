// Score modifiers (DESIGN.md §2, issue 18): options that change the logits every path
// computes, checked once. The final logit of an allowed pair (query i at position p_i, key j):
//   s = scale · q_i·k_j;  s = softcap · tanh(s / softcap) (softcap > 0);  s −= slope_h · |p_i − j|
// and the row's softmax denominator gains exp(sink_h) (gpt-oss's attention sinks), which
// weighs no value row. Each is off unless given; `scale` alone only changes a constant.
import { argError } from './errors.js';

export const MODIFIER_OPTION_KEYS = ['scale', 'softcap', 'alibi', 'sinks'] as const;

export interface ModifierOptions {
  /** Multiplier of q·k (default 1/sqrt(headDim)): a positive finite number. */
  scale?: number;
  /** Gemma 2's logit soft-capping: scores become softcap·tanh(s/softcap) after scaling; a positive finite number. */
  softcap?: number;
  /**
   * ALiBi: the bias −slope_h·|p_i − j| on every score. `true`: the slopes of Press et al.'s
   * reference code for the head count (alibiSlopes); or a Float32Array of one slope per head.
   */
  alibi?: boolean | Float32Array;
  /** Attention sinks: one logit per head added to every row's softmax denominator (a Float32Array of heads finite values). */
  sinks?: Float32Array;
}

/** The modifiers of a configuration; null fields are off. */
export interface Modifiers {
  /** The user's scale; null: 1/sqrt(headDim). */
  readonly scale: number | null;
  /** 0: off. */
  readonly softcap: number;
  readonly alibi: Float32Array | null;
  readonly sinks: Float32Array | null;
}

/**
 * ALiBi slopes for n heads as Press et al.'s reference code computes them (attention_with_linear_biases,
 * get_slopes): for a power of two, the geometric sequence starting at and multiplied by
 * 2^(−8/n); otherwise the slopes of the largest power of two below n, then every other slope
 * of twice that power for the remaining heads.
 * see: ofirpress/attention_with_linear_biases fairseq/models/transformer.py
 */
export function alibiSlopes(n: number): Float64Array {
  const pow2 = (m: number) => {
    const start = 2 ** -(2 ** -(Math.log2(m) - 3));
    return Array.from({ length: m }, (_, i) => start * start ** i);
  };
  const slopes = (m: number): number[] => {
    if (Number.isInteger(Math.log2(m))) return pow2(m);
    const closest = 2 ** Math.floor(Math.log2(m));
    return [...pow2(closest), ...slopes(2 * closest).filter((_, i) => i % 2 === 0).slice(0, m - closest)];
  };
  return Float64Array.from(slopes(n));
}

/** Reads and checks the modifier options for `heads` query heads. */
export function readModifiers(o: ModifierOptions, heads: number): Modifiers {
  let scale: number | null = null;
  if (o.scale !== undefined) {
    if (typeof o.scale !== 'number' || !Number.isFinite(o.scale) || o.scale <= 0) {
      throw argError('options.scale', 'a positive finite number (the multiplier of q·k)', o.scale);
    }
    scale = o.scale;
  }
  let softcap = 0;
  if (o.softcap !== undefined) {
    if (typeof o.softcap !== 'number' || !Number.isFinite(o.softcap) || o.softcap <= 0) {
      throw argError('options.softcap', 'a positive finite number (scores become softcap·tanh(s/softcap))', o.softcap);
    }
    softcap = o.softcap;
  }
  let alibi: Float32Array | null = null;
  if (o.alibi === true) alibi = Float32Array.from(alibiSlopes(heads));
  else if (o.alibi instanceof Float32Array) {
    if (o.alibi.length !== heads) throw argError('options.alibi', `true or a Float32Array of one slope per head (${heads})`, o.alibi);
    const bad = o.alibi.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw argError(`options.alibi[${bad}]`, 'a finite slope', o.alibi[bad]);
    alibi = o.alibi.slice();
  } else if (o.alibi !== undefined && o.alibi !== false) {
    throw argError('options.alibi', `true, false or a Float32Array of one slope per head (${heads})`, o.alibi);
  }
  let sinks: Float32Array | null = null;
  if (o.sinks !== undefined) {
    if (!(o.sinks instanceof Float32Array) || o.sinks.length !== heads) {
      throw argError('options.sinks', `a Float32Array of one logit per head (${heads})`, o.sinks);
    }
    const bad = o.sinks.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw argError(`options.sinks[${bad}]`, 'a finite logit', o.sinks[bad]);
    sinks = o.sinks.slice();
  }
  return { scale, softcap, alibi, sinks };
}

/** Whether the kernels must run their modifier pipeline (a user scale is only a constant). */
export function hasScoreModifiers(m: Modifiers): boolean {
  return m.softcap > 0 || m.alibi !== null || m.sinks !== null;
}

/** The scale of q·k for a head dim. */
export function scaleOf(m: Modifiers, headDim: number): number {
  return m.scale ?? 1 / Math.sqrt(headDim);
}
