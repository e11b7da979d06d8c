// Peer (a): the obvious plain-JavaScript dense masked attention in float32 storage.
// Per batch × head × query row: scores against every key (S = q·kᵀ·scale + bias), softmax
// over the whole row, O = P·V. Masked keys are computed and then zeroed by the bias, as a
// dense implementation does. Single-threaded. Same [batch, nCtx, nEmbd] layout as the library.

export const name = 'plain-js';
export const configs = [{ label: 'plain JS dense', threads: 1 }];

export async function setup(w, _mode, _L, { q, k, v, shape }, bias) {
  const [batch, nCtx, nEmbd] = shape;
  const heads = w.heads, d = nEmbd / heads, scale = 1 / Math.sqrt(d);
  const qd = q.data, kd = k.data, vd = v.data;
  const row = new Float32Array(nCtx);
  const run = () => {
    const out = new Float32Array(batch * nCtx * nEmbd);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < nCtx; i++) {
          const qi = (b * nCtx + i) * nEmbd + h * d;
          let m = -Infinity;
          for (let j = 0; j < nCtx; j++) {
            const kj = (b * nCtx + j) * nEmbd + h * d;
            let s = 0;
            for (let t = 0; t < d; t++) s += qd[qi + t] * kd[kj + t];
            s = s * scale + bias[i * nCtx + j];
            row[j] = s;
            if (s > m) m = s;
          }
          let sum = 0;
          for (let j = 0; j < nCtx; j++) sum += row[j] = Math.exp(row[j] - m);
          const inv = 1 / sum;
          for (let j = 0; j < nCtx; j++) {
            const p = row[j] * inv;
            const vj = (b * nCtx + j) * nEmbd + h * d;
            for (let t = 0; t < d; t++) out[qi + t] += p * vd[vj + t];
          }
        }
      }
    }
    return out;
  };
  return { run, info: { layout: '[batch, nCtx, nEmbd] strided per head, no copies' } };
}
