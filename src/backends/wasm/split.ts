// Splitting a call that does not fit wasm32's 4 GiB of linear memory: the batch in halves
// first (zero-copy views), then the heads of one batch item (their columns gathered into
// compact tensors). Each part is an independent attention problem, so the parts' results
// are exactly the whole call's. A part that is a single (batch item, head) and still does
// not fit is rejected by the engine's MemoryLimitError, before any work.
import type { Plan } from '../../plan.js';
import type { TensorData } from '../backend.js';
import type { Modifiers } from '../../config-mods.js';

export interface Part {
  plan: Plan;
  q: TensorData;
  k: TensorData;
  v: TensorData;
  /** The part's rows of the call's lse ([batch][heads][nCtx]: a contiguous range either way). */
  lse?: Float32Array;
  /** The part's heads' modifiers (ALiBi slopes and sinks are per head). */
  mods?: Modifiers;
  /** Copies the part's output into the whole call's output. */
  place(part: TensorData, out: TensorData): void;
}

/** Two halves of the call, or null when it is one batch item and one head. */
export function splitInTwo(plan: Plan, q: TensorData, k: TensorData, v: TensorData, lse?: Float32Array, mods?: Modifiers): Part[] | null {
  const { batch, heads, nCtx, nEmbd, headDim, nK, kvHeads } = plan;
  if (batch > 1) {
    const mid = Math.ceil(batch / 2);
    const kvItem = nK * kvHeads * headDim;
    return [[0, mid], [mid, batch]].map(([b0, b1]) => {
      const from = b0 * nCtx * nEmbd;
      const to = b1 * nCtx * nEmbd;
      return {
        plan: { ...plan, batch: b1 - b0, keyLengths: plan.keyLengths?.subarray(b0, b1) ?? null },
        q: q.subarray(from, to),
        k: k.subarray(b0 * kvItem, b1 * kvItem),
        v: v.subarray(b0 * kvItem, b1 * kvItem),
        lse: lse?.subarray(b0 * heads * nCtx, b1 * heads * nCtx),
        mods,
        place: (part, out) => out.set(part, from),
      };
    });
  }
  // By heads only where K and V have them too (the same columns as q).
  if (heads > 1 && kvHeads === heads && nK === nCtx) {
    const mid = Math.ceil(heads / 2);
    return [[0, mid], [mid, heads]].map(([h0, h1]) => {
      const width = (h1 - h0) * headDim;
      const col0 = h0 * headDim;
      // [nCtx, nEmbd] → [nCtx, width]: columns of heads h0..h1-1
      const gather = (t: TensorData) => {
        const out = t instanceof Uint16Array ? new Uint16Array(nCtx * width) : new Float32Array(nCtx * width);
        for (let r = 0; r < nCtx; r++) (out as Float32Array).set(t.subarray(r * nEmbd + col0, r * nEmbd + col0 + width), r * width);
        return out;
      };
      return {
        plan: { ...plan, heads: h1 - h0, kvHeads: h1 - h0, nEmbd: width, headLayout: plan.headLayout.subarray(h0, h1) },
        q: gather(q),
        k: gather(k),
        v: gather(v),
        lse: lse?.subarray(h0 * nCtx, h1 * nCtx),
        mods: mods && { ...mods, alibi: mods.alibi?.subarray(h0, h1) ?? null, sinks: mods.sinks?.subarray(h0, h1) ?? null },
        place: (part, out) => {
          for (let r = 0; r < nCtx; r++) out.set(part.subarray(r * width, (r + 1) * width), r * nEmbd + col0);
        },
      };
    });
  }
  return null;
}
