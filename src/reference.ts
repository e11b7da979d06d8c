// Float64 dense reference: the contract of DESIGN.md §1 written as plainly as possible,
// O(nCtx²) per head. Independent of the layout module on purpose: the tests compare
// every backend with it. Exported for users who want to check results themselves.
// see: openai/sparse_attention attention.py (get_attn_mask, get_blocksparse_obj)
import { type SparseAttentionOptions, checkKeys, makeConfig } from './config.js';
import { randomBlocks } from './layout/named.js';
import { argError, checkPositiveInt } from './errors.js';
import { type ForwardOptions, type HalfTensor, type Tensor, checkHeads, checkKeyLengths, readTensor } from './tensors.js';
import { fromHalfBits } from './half.js';

export interface ReferenceResult {
  data: Float64Array;
  shape: [number, number, number];
  /**
   * Per row, [batch][heads][nQ]: the natural-log logsumexp of its final logits (scaled,
   * soft-capped, ALiBi-biased) over its allowed keys, ln Σ_j exp(s_ij), sinks excluded;
   * −Infinity for a row with no allowed key.
   */
  lse: Float64Array;
}

/** Allowed(h, i, j) for one configuration, straight from the mode table. */
export function referenceMask(
  heads: number,
  attnMode: string,
  localAttnCtx: number | undefined,
  blocksize: number,
  options: SparseAttentionOptions = {},
  /**
   * Keys of the call: 'bigbird' draws its random blocks from the nCtx / blocksize blocks there
   * are; a custom layout's block masks are selected for the key blocks below it.
   */
  nCtx = 0,
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
        if (i < 0) return false; // before position 0 (nQ > nK): the layout has no row there
        const qb = Math.floor(i / bs);
        const kb = Math.floor(j / bs);
        if (c.causal && (kb > qb || (kb === qb && j > i))) return false;
        if (Math.floor(qb / stride) === Math.floor(kb / stride)) return true;
        const first = stride - 1 - (h % c.numVerts) * c.vertsize;
        const col = kb % stride;
        return col <= first && col > first - c.vertsize;
      };
    }
    case 'longformer':
    case 'bigbird': {
      // DeepSpeed's block patterns written from their definition (a global block attends to
      // and is attended by every block; a window of numSlidingWindowBlocks centred blocks;
      // bigbird's random blocks), causal inside the diagonal block. Only the seeded random
      // draw is shared with the layout module (src/layout/named.ts randomBlocks).
      const p = c.pattern!;
      const nB = Math.ceil(nCtx / bs);
      const w = Math.floor(p.numSlidingWindowBlocks / 2);
      const global = (b: number) =>
        p.mode === 'bigbird'
          ? b < p.numGlobalBlocks
          : p.globalBlockIndices.some((s0, x) => b >= s0 && b < (p.globalBlockEndIndices ? p.globalBlockEndIndices[x] : s0 + 1));
      const random = new Map<string, number[]>();
      return (h, i, j) => {
        if (i < 0) return false; // before position 0 (nQ > nK): the layout has no row there
        const qb = Math.floor(i / bs);
        const kb = Math.floor(j / bs);
        if (c.causal && (kb > qb || (kb === qb && j > i))) return false;
        if (global(qb) || global(kb) || Math.abs(kb - qb) <= w) return true;
        if (p.mode !== 'bigbird') return false;
        const head = c.patternPerHead ? h : 0;
        let drawn = random.get(`${head}:${qb}`);
        if (!drawn) random.set(`${head}:${qb}`, (drawn = randomBlocks(p, head, qb, nB)));
        return drawn.includes(kb);
      };
    }
    case 'custom': {
      const mask = c.mask;
      const imported = c.customImport;
      const perBlock = c.maskBlocks;
      if (!imported && !perBlock) {
        const blocks = c.customBlocks!;
        return (h, i, j) => i >= 0 && blocks(h, Math.floor(i / bs), Math.floor(j / bs)) && (!mask || Boolean(mask(h, i, j)));
      }
      // Block lists and block masks, straight from their definitions: a row of query block qb
      // lists key blocks (those below the call's nB), each whole or under the token mask;
      // select() names the mask of each masked block of the row; imports from ONNX Runtime
      // add j <= i.
      const nB = nCtx > 0 ? Math.ceil(nCtx / bs) : c.customBlockCount;
      if (!Number.isFinite(nB)) throw argError('nCtx', 'given (the keys of the call) for a function layout with block masks', nCtx);
      const rows = new Map<string, Map<number, number>>(); // kb -> -2 whole block, else the mask id (-1 whole)
      const rowOf = (h: number, qb: number) => {
        const key = `${h}:${qb}`;
        let row = rows.get(key);
        if (row) return row;
        const entries: [number, boolean][] = [];
        if (imported) {
          const head = imported.heads[h % imported.heads.length];
          if (qb < imported.rows) {
            for (let e = head.rowPtr[qb]; e < head.rowPtr[qb + 1]; e++) {
              if (head.cols[e] < nB) entries.push([head.cols[e], head.masked ? head.masked[e] === 1 : true]);
            }
          }
        } else {
          for (let kb = 0; kb < nB; kb++) if (c.customBlocks!(h, qb, kb)) entries.push([kb, true]);
        }
        entries.sort((a, b) => a[0] - b[0]);
        row = new Map();
        const masked = entries.filter(([, m]) => m).map(([kb]) => kb);
        const ids = new Int32Array(masked.length).fill(-1);
        if (perBlock && masked.length > 0) perBlock.select(h, qb, Int32Array.from(masked), ids);
        for (const [kb, m] of entries) row.set(kb, m ? ids[masked.indexOf(kb)] : -2);
        rows.set(key, row);
        return row;
      };
      return (h, i, j) => {
        if (i < 0 || (imported?.causal && j > i)) return false;
        const id = rowOf(h, Math.floor(i / bs)).get(Math.floor(j / bs));
        if (id === undefined) return false;
        if (id === -2) return true;
        if (mask) return Boolean(mask(h, i, j));
        return id === -1 || perBlock!.blocks[id][(i % bs) * bs + (j % bs)] === 1;
      };
    }
  }
}

/**
 * Dense float64 attention with the same arguments as SparseAttention. A query with no
 * allowed key yields zeros; NaN and Infinity propagate through plain arithmetic.
 *
 * Beyond what the kernels run today it states the inference contract (DESIGN.md §2), so
 * that the tests can hold every path to it: `options.kvHeads` (K and V carry kvHeads
 * heads; query head h reads K/V head floor(h·kvHeads/heads)); q of nQ rows against k, v of
 * nK rows, aligned bottom-right (query i sits at position nK − nQ + i, key j at j; the
 * block-pattern modes' layouts cover positions 0 … nK − 1, so with nQ > nK a query before
 * position 0 has no layout row: zeros); and
 * `forwardOptions.seqLengths` (batch 1: packed sequences, each attending only within
 * itself, positions restarting at 0). The score modifiers (`scale`, `softcap`, `alibi`,
 * `sinks`; src/config-mods.ts) apply in that order, ALiBi on the same positions.
 */
export function attentionReference(
  q: Tensor | HalfTensor,
  k: Tensor | HalfTensor,
  v: Tensor | HalfTensor,
  heads: number,
  attnMode: string,
  localAttnCtx?: number,
  blocksize = 32,
  options: SparseAttentionOptions & { kvHeads?: number } = {},
  forwardOptions: Pick<ForwardOptions, 'keyLengths'> & { seqLengths?: ArrayLike<number> } = {},
): ReferenceResult {
  const { kvHeads: kvIn, ...rest } = options ?? {};
  const kvHeads = kvIn === undefined ? heads : checkPositiveInt('options.kvHeads', kvIn);
  if (heads % kvHeads !== 0) throw argError('options.kvHeads', `a divisor of heads (${heads})`, kvHeads);
  const { mods } = makeConfig(heads, attnMode, localAttnCtx, blocksize, rest); // validates the arguments
  // options.dtype 'float16': the tensors hold halves, widened exactly; the output stays float64
  const dtype = rest.dtype ?? 'float32';
  const tq = readTensor('q', q, dtype);
  const tk = readTensor('k', k, dtype);
  const tv = readTensor('v', v, dtype);
  const [batch, nQ, nEmbd] = tq.shape;
  const nK = tk.shape[1];
  checkHeads(tq.shape, heads);
  const d = nEmbd / heads;
  const kvEmbd = kvHeads * d;
  for (const [name, t] of [['k', tk], ['v', tv]] as const) {
    if (t.shape[0] !== batch || t.shape[1] !== nK || t.shape[2] !== kvEmbd) {
      throw argError(`${name}.shape`, `[${batch}, ${nK}, ${kvEmbd}] (batch of q, nK of k, kvHeads·headDim)`, t.shape);
    }
  }
  const fo = checkKeys('forward options', forwardOptions ?? {}, ['keyLengths', 'seqLengths']);
  const [klIn, slIn] = [fo.keyLengths, fo.seqLengths];
  const keyLengths = checkKeyLengths(klIn, batch, nK);
  // Segment of each row: [start, end) of its packed sequence (the whole row range without seqLengths).
  const segStart = new Int32Array(Math.max(nQ, nK));
  const segEnd = new Int32Array(Math.max(nQ, nK)).fill(nK);
  if (slIn !== undefined) {
    if (batch !== 1 || nQ !== nK) throw argError('seqLengths', 'used with batch 1 and q, k of one length (packed self-attention)', slIn);
    const lens = Array.from(slIn as ArrayLike<number>);
    if (lens.some((x) => !Number.isInteger(x) || x < 0) || lens.reduce((a, b) => a + b, 0) !== nQ) {
      throw argError('seqLengths', `non-negative integers summing to nCtx (${nQ})`, slIn);
    }
    let at = 0;
    for (const len of lens) {
      for (let i = at; i < at + len; i++) [segStart[i], segEnd[i]] = [at, at + len];
      at += len;
    }
  }
  const widen = (x: Float32Array | Uint16Array) => (x instanceof Uint16Array ? fromHalfBits(x) : x);
  const [qd, kd, vd] = [widen(tq.data), widen(tk.data), widen(tv.data)];
  const allowed = referenceMask(heads, attnMode, localAttnCtx, blocksize, rest, nK);
  const scale = mods.scale ?? 1 / Math.sqrt(d);
  const cap = mods.softcap;
  const out = new Float64Array(batch * nQ * nEmbd);
  const lse = new Float64Array(batch * heads * nQ).fill(-Infinity);
  const w = new Float64Array(nK);
  const ok = new Uint8Array(nK);
  for (let b = 0; b < batch; b++) {
    const len = keyLengths ? keyLengths[b] : nK;
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor((h * kvHeads) / heads);
      for (let i = 0; i < nQ; i++) {
        const qi = (b * nQ + i) * nEmbd + h * d;
        // bottom-right alignment; packed sequences restart their positions at 0
        const s0 = slIn === undefined ? 0 : segStart[i];
        const s1 = slIn === undefined ? nK : segEnd[i];
        const pos = nK - nQ + i - s0;
        let m = -Infinity;
        let any = false;
        for (let j = 0; j < nK; j++) {
          ok[j] = j < len && j >= s0 && j < s1 && allowed(h, pos, j - s0) ? 1 : 0;
          if (!ok[j]) continue;
          const kj = (b * nK + j) * kvEmbd + kvh * d;
          let s = 0;
          for (let t = 0; t < d; t++) s += qd[qi + t] * kd[kj + t];
          s *= scale;
          if (cap > 0) s = cap * Math.tanh(s / cap);
          if (mods.alibi) s -= mods.alibi[h] * Math.abs(pos - (j - s0));
          w[j] = s;
          m = any ? (Number.isNaN(m) || Number.isNaN(s) ? NaN : Math.max(m, s)) : s;
          any = true;
        }
        if (!any) continue; // no allowed key: zeros
        let sum = 0;
        for (let j = 0; j < nK; j++) {
          if (!ok[j]) continue;
          w[j] = Math.exp(w[j] - m);
          sum += w[j];
        }
        lse[(b * heads + h) * nQ + i] = m + Math.log(sum);
        // a sink adds exp(sink) to the denominator only
        if (mods.sinks) sum += Math.exp(mods.sinks[h] - m);
        for (let j = 0; j < nK; j++) {
          if (!ok[j]) continue;
          const p = w[j] / sum;
          const vj = (b * nK + j) * kvEmbd + kvh * d;
          for (let t = 0; t < d; t++) out[qi + t] += p * vd[vj + t];
        }
      }
    }
  }
  return { data: out, shape: [batch, nQ, nEmbd], lse };
}
