// mergeAttention: the exact combination of attention results computed over disjoint key
// sets, from each part's output and logsumexp (as FlashAttention's split-KV and ring
// attention combine partial results). For a row with parts p of logsumexp l_p and output o_p:
//   M = max_p l_p,  w_p = exp(l_p − M),  out = Σ w_p·o_p / Σ w_p,  lse = M + ln Σ w_p.
// A part with no key for the row (l_p = −Infinity) weighs 0; a row no part has a key for
// stays zeros with lse −Infinity, as a call over all keys gives it. Computed in float64.
import { argError, checkPositiveInt } from './errors.js';

type Floats = Float32Array | Float64Array;

/** One partial result: out [batch, nQ, heads · headDim] and lse [batch][heads][nQ]. */
export interface AttentionPart {
  out: { data: Floats; shape?: readonly number[]; dims?: readonly number[] };
  lse: Floats;
}

export interface MergedAttention {
  /** Float64Array when every part's out is one, else Float32Array. */
  out: { data: Floats; shape: [number, number, number]; dims: [number, number, number] };
  /** Float64Array when every part's lse is one, else Float32Array. */
  lse: Floats;
}

const isFloats = (x: unknown): x is Floats => x instanceof Float32Array || x instanceof Float64Array;

/**
 * Combines attention results over disjoint key sets of the same queries into the result
 * over their union (see the file comment). `heads`: the query heads of out's last axis.
 */
export function mergeAttention(parts: readonly AttentionPart[], heads: number): MergedAttention {
  checkPositiveInt('heads', heads);
  if (!Array.isArray(parts) || parts.length === 0) throw argError('parts', 'a non-empty array of { out, lse }', parts);
  let shape: [number, number, number] | null = null;
  const outs: Floats[] = [];
  const lses: Floats[] = [];
  parts.forEach((p, n) => {
    if (p === null || typeof p !== 'object') throw argError(`parts[${n}]`, 'an object { out, lse }', p);
    const out = p.out;
    if (out === null || typeof out !== 'object' || !isFloats(out.data)) {
      throw argError(`parts[${n}].out`, 'a tensor { data: Float32Array | Float64Array, shape: [batch, nQ, nEmbd] }', out);
    }
    const s = out.shape ?? out.dims;
    if (!Array.isArray(s) || s.length !== 3 || !s.every((d) => Number.isInteger(d) && d >= 0)) {
      throw argError(`parts[${n}].out.shape`, '[batch, nQ, nEmbd] of integers >= 0', s);
    }
    if (shape === null) {
      shape = [s[0], s[1], s[2]];
      if (shape[2] % heads !== 0) throw argError('heads', `a divisor of nEmbd (${shape[2]})`, heads);
    } else if (s.some((d, i) => d !== shape![i])) {
      throw argError(`parts[${n}].out.shape`, `[${shape.join(', ')}] (the shape of parts[0].out)`, s);
    }
    if (out.data.length !== shape[0] * shape[1] * shape[2]) {
      throw argError(`parts[${n}].out.data.length`, `${shape[0] * shape[1] * shape[2]} for shape [${shape.join(', ')}]`, out.data.length);
    }
    if (!isFloats(p.lse)) throw argError(`parts[${n}].lse`, 'a Float32Array or Float64Array of batch · heads · nQ', p.lse);
    if (p.lse.length !== shape[0] * heads * shape[1]) {
      throw argError(`parts[${n}].lse.length`, `batch · heads · nQ = ${shape[0] * heads * shape[1]}`, p.lse.length);
    }
    outs.push(out.data);
    lses.push(p.lse);
  });
  const [batch, nQ, nEmbd] = shape!;
  const d = nEmbd / heads;
  const out = outs.every((o) => o instanceof Float64Array) ? new Float64Array(outs[0].length) : new Float32Array(outs[0].length);
  const lse = lses.every((l) => l instanceof Float64Array) ? new Float64Array(lses[0].length) : new Float32Array(lses[0].length);
  const w = new Float64Array(parts.length);
  const acc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < nQ; i++) {
        const r = (b * heads + h) * nQ + i;
        let m = -Infinity;
        for (const l of lses) if (l[r] > m || Number.isNaN(l[r])) m = Number.isNaN(m) ? m : l[r];
        if (m === -Infinity) {
          lse[r] = -Infinity; // no part has a key for this row: zeros, as the full call gives
          continue;
        }
        let sum = 0;
        for (let p = 0; p < parts.length; p++) sum += w[p] = lses[p][r] === -Infinity ? 0 : Math.exp(lses[p][r] - m);
        lse[r] = m + Math.log(sum);
        const at = (b * nQ + i) * nEmbd + h * d;
        acc.fill(0);
        for (let p = 0; p < parts.length; p++) {
          if (w[p] === 0) continue;
          const o = outs[p];
          for (let t = 0; t < d; t++) acc[t] += w[p] * o[at + t];
        }
        for (let t = 0; t < d; t++) out[at + t] = acc[t] / sum;
      }
    }
  }
  const dims: [number, number, number] = [batch, nQ, nEmbd];
  return { out: { data: out, shape: dims, dims: [...dims] as [number, number, number] }, lse };
}
