// Float64 dense reference: the contract of DESIGN.md §1 written as plainly as possible,
// O(nCtx²) per head. Independent of the layout module on purpose: the tests compare
// every backend with it. Exported for users who want to check results themselves.
// see: openai/sparse_attention attention.py (get_attn_mask, get_blocksparse_obj)
import { type SparseAttentionOptions, makeConfig } from './config.js';
import { type ForwardOptions, type Tensor, checkKeyLengths, readCallOptions, readInputs } from './tensors.js';

export interface ReferenceResult {
  data: Float64Array;
  shape: [number, number, number];
}

/** Allowed(h, i, j) for one configuration, straight from the mode table. */
export function referenceMask(
  heads: number,
  attnMode: string,
  localAttnCtx: number | undefined,
  blocksize: number,
  options: SparseAttentionOptions = {},
): (h: number, i: number, j: number) => boolean {
  const c = makeConfig(heads, attnMode, localAttnCtx, blocksize, options);
  const L = c.localAttnCtx;
  const bs = c.blocksize;
  switch (c.mode) {
    case 'all':
      return c.causal ? (_h, i, j) => j <= i : () => true;
    case 'local':
      return c.causal ? (_h, i, j) => i - L < j && j <= i : (_h, i, j) => Math.abs(i - j) < L;
    case 'strided':
      return c.causal ? (_h, i, j) => j <= i && (i - j) % L === 0 : (_h, i, j) => (i - j) % L === 0;
    case 'fixed': {
      // OpenAI: stride = L / bs blocks; head h sees its stride window and the summary
      // columns idx::stride for idx in range(stride-1, -1, -1).reshape(-1, vertsize)[h % numVerts].
      const stride = L / bs;
      return (h, i, j) => {
        const qb = Math.floor(i / bs);
        const kb = Math.floor(j / bs);
        if (c.causal && (kb > qb || (kb === qb && j > i))) return false;
        if (Math.floor(qb / stride) === Math.floor(kb / stride)) return true;
        const first = stride - 1 - (h % c.numVerts) * c.vertsize;
        const col = kb % stride;
        return col <= first && col > first - c.vertsize;
      };
    }
    case 'custom': {
      const blocks = c.customBlocks!;
      const mask = c.mask;
      return (h, i, j) => blocks(h, Math.floor(i / bs), Math.floor(j / bs)) && (!mask || Boolean(mask(h, i, j)));
    }
  }
}

/**
 * Dense float64 attention with the same arguments as SparseAttention. A query with no
 * allowed key yields zeros; NaN and Infinity propagate through plain arithmetic.
 */
export function attentionReference(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: number,
  attnMode: string,
  localAttnCtx?: number,
  blocksize = 32,
  options: SparseAttentionOptions = {},
  forwardOptions: Pick<ForwardOptions, 'keyLengths'> = {},
): ReferenceResult {
  const config = makeConfig(heads, attnMode, localAttnCtx, blocksize, options);
  const inputs = readInputs(config, q, k, v);
  const [batch, nCtx, nEmbd] = inputs.shape;
  const keyLengths = checkKeyLengths(readCallOptions(forwardOptions, ['keyLengths']).keyLengths, batch, nCtx);
  const [qd, kd, vd] = [inputs.q, inputs.k, inputs.v];
  const allowed = referenceMask(heads, attnMode, localAttnCtx, blocksize, options);
  const d = nEmbd / heads;
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(batch * nCtx * nEmbd);
  const w = new Float64Array(nCtx);
  const ok = new Uint8Array(nCtx);
  for (let b = 0; b < batch; b++) {
    const len = keyLengths ? keyLengths[b] : nCtx;
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < nCtx; i++) {
        const qi = (b * nCtx + i) * nEmbd + h * d;
        let m = -Infinity;
        let any = false;
        for (let j = 0; j < nCtx; j++) {
          ok[j] = j < len && allowed(h, i, j) ? 1 : 0;
          if (!ok[j]) continue;
          const kj = (b * nCtx + j) * nEmbd + h * d;
          let s = 0;
          for (let t = 0; t < d; t++) s += qd[qi + t] * kd[kj + t];
          s *= scale;
          w[j] = s;
          m = any ? (Number.isNaN(m) || Number.isNaN(s) ? NaN : Math.max(m, s)) : s;
          any = true;
        }
        if (!any) continue; // no allowed key: zeros
        let sum = 0;
        for (let j = 0; j < nCtx; j++) {
          if (!ok[j]) continue;
          w[j] = Math.exp(w[j] - m);
          sum += w[j];
        }
        for (let j = 0; j < nCtx; j++) {
          if (!ok[j]) continue;
          const p = w[j] / sum;
          const vj = (b * nCtx + j) * nEmbd + h * d;
          for (let t = 0; t < d; t++) out[qi + t] += p * vd[vj + t];
        }
      }
    }
  }
  return { data: out, shape: [batch, nCtx, nEmbd] };
}
