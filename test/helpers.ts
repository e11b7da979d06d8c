// Shared test helpers: seeded inputs, the float64 reference, tolerance checks that print
// index, expected, actual, shape and configuration on failure.
import { attentionReference, type SparseAttentionOptions } from '../dist/index.js';
import { randomTensor as seededTensor } from '../scripts/lib/property.mjs';

export interface Case {
  mode: 'all' | 'local' | 'strided' | 'fixed' | 'longformer' | 'bigbird' | 'custom';
  L?: number;
  bs: number;
  batch: number;
  nCtx: number;
  heads: number;
  headDim: number;
  options?: SparseAttentionOptions;
  keyLengths?: number[];
}

/** An inference-shaped case: nQ queries against nK keys, kvHeads K/V heads (the GPU suites' head dim is their own). */
export interface InferenceCase {
  mode: Case['mode'];
  L?: number;
  causal: boolean;
  batch: number;
  nQ: number;
  nK: number;
  heads: number;
  kvHeads: number;
  keyLengths?: number[];
  options?: Record<string, unknown>;
}

export interface T3 {
  data: Float32Array;
  shape: [number, number, number];
}

/** xorshift32, mapped to [-scale, scale): the stream of the property scripts. */
export function randomTensor(shape: [number, number, number], seed: number, scale = 1): T3 {
  return seededTensor(shape, seed, scale);
}

export function inputs(c: Case, seed = 1): { q: T3; k: T3; v: T3 } {
  const shape: [number, number, number] = [c.batch, c.nCtx, c.heads * c.headDim];
  // Scores of O(1)–O(10): softmax weights far from uniform, as in trained models.
  return { q: randomTensor(shape, seed, 2), k: randomTensor(shape, seed + 1, 2), v: randomTensor(shape, seed + 2) };
}

const refCache = new Map<string, Float64Array>();
export function reference(c: Case, seed = 1): Float64Array {
  const key = JSON.stringify({ ...c, options: { ...c.options, layout: undefined, mask: undefined } }) + seed;
  let r = refCache.get(key);
  if (!r || c.options?.layout || c.options?.mask) {
    const { q, k, v } = inputs(c, seed);
    r = attentionReference(q, k, v, c.heads, c.mode, c.L, c.bs, c.options ?? {}, { keyLengths: c.keyLengths }).data;
    refCache.set(key, r);
  }
  return r;
}

export function describeCase(c: Case): string {
  const o = c.options ?? {};
  const extra = Object.entries(o)
    .filter(([k]) => k !== 'layout' && k !== 'mask')
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${c.mode}${c.L ? ` L=${c.L}` : ''} bs=${c.bs} [${c.batch},${c.nCtx},${c.heads}x${c.headDim}]${extra ? ` {${extra}}` : ''}${c.keyLengths ? ` lens=${c.keyLengths}` : ''}`;
}

/** Fails with the first offending element, unless every |a - r| <= atol + rtol·|r| (NaN must match NaN). */
export function expectClose(actual: Float32Array, expected: Float64Array, atol: number, rtol: number, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const r = expected[i];
    if (Number.isNaN(r) || Number.isNaN(a)) {
      if (Number.isNaN(r) !== Number.isNaN(a)) { worst = i; break; }
      continue;
    }
    if (a === r) continue; // also equal infinities
    const excess = Math.abs(a - r) - (atol + rtol * Math.abs(r));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: index ${worst} expected ${expected[worst]} got ${actual[worst]} ` +
        `(|a-r| = ${Math.abs(actual[worst] - expected[worst])}, allowed ${atol} + ${rtol}·|r|)`,
    );
  }
}

/** The score-modifier sets of the modifier suites, by name (slopes and sinks for up to 8 heads). */
export function modifierSet(name: string, heads: number): Record<string, unknown> {
  const sinks = Float32Array.from({ length: heads }, (_, h) => [1.5, -2, 0.25, 3, -0.5, 0, 2, -1][h]);
  switch (name) {
    case 'softcap': return { softcap: 1.7 };
    case 'alibi': return { alibi: true };
    case 'alibi-slopes': return { alibi: Float32Array.from({ length: heads }, (_, h) => 0.05 * (h + 1)) };
    case 'sinks': return { sinks };
    case 'scale': return { scale: 0.4 };
    case 'softcap+alibi': return { softcap: 3, alibi: true };
    case 'all': return { scale: 0.3, softcap: 2.5, alibi: true, sinks };
    default: return {};
  }
}

/** Token rows [from, to) of every batch item of a [batch, total, width] array. */
export function tokenRows(data: Float32Array, batch: number, total: number, width: number, from: number, to: number): Float32Array {
  const out = new Float32Array(batch * (to - from) * width);
  for (let b = 0; b < batch; b++) out.set(data.subarray((b * total + from) * width, (b * total + to) * width), b * (to - from) * width);
  return out;
}

/** The reference's output rows and lse rows for query tokens [from, to) of a [batch, total, heads · width/heads] call. */
export function referenceRows(full: { data: Float64Array; lse: Float64Array }, batch: number, heads: number, total: number, width: number, from: number, to: number): { data: Float64Array; lse: Float64Array } {
  const data = new Float64Array(batch * (to - from) * width);
  const lse = new Float64Array(batch * heads * (to - from));
  for (let b = 0; b < batch; b++) {
    data.set(full.data.subarray((b * total + from) * width, (b * total + to) * width), b * (to - from) * width);
    for (let h = 0; h < heads; h++) lse.set(full.lse.subarray((b * heads + h) * total + from, (b * heads + h) * total + to), (b * heads + h) * (to - from));
  }
  return { data, lse };
}
