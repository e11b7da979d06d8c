// Peer (d): @tensorflow/tfjs-backend-wasm (XNNPACK). One 2-D matMul chain per batch × head
// (its batched matMul takes a slow generic path): S = q·kᵀ, ·scale, + bias, softmax, ·v.
// Per-head [nCtx, headDim] inputs are split off outside the timed region; the timed region
// includes reading every head back (dataSync) into one [batch, nCtx, nEmbd] array.
// Single-threaded in Node by design (the backend enables threads only in browsers).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

export const name = 'tfjs-backend-wasm';
export const configs = [{ label: 'tfjs-backend-wasm (XNNPACK) 1t', threads: 1 }];

let ready = null;
async function init() {
  ready ??= (async () => { await tf.setBackend('wasm'); await tf.ready(); })();
  return ready;
}

function headSlice(t, b, h, nCtx, nEmbd, d) {
  const out = new Float32Array(nCtx * d);
  for (let i = 0; i < nCtx; i++) out.set(t.data.subarray((b * nCtx + i) * nEmbd + h * d, (b * nCtx + i) * nEmbd + (h + 1) * d), i * d);
  return tf.tensor2d(out, [nCtx, d]);
}

export async function setup(w, _mode, _L, { q, k, v, shape }, bias) {
  await init();
  const [batch, nCtx, nEmbd] = shape;
  const heads = w.heads, d = nEmbd / heads;
  const parts = [];
  for (let b = 0; b < batch; b++) for (let h = 0; h < heads; h++) {
    parts.push({ b, h, q: headSlice(q, b, h, nCtx, nEmbd, d), k: headSlice(k, b, h, nCtx, nEmbd, d), v: headSlice(v, b, h, nCtx, nEmbd, d) });
  }
  const biasT = tf.tensor2d(bias, [nCtx, nCtx]);
  const scale = tf.scalar(1 / Math.sqrt(d));
  const run = () => {
    const out = new Float32Array(batch * nCtx * nEmbd);
    for (const p of parts) {
      const o = tf.tidy(() => tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(p.q, p.k, false, true), scale), biasT)), p.v));
      const od = o.dataSync();
      o.dispose();
      for (let i = 0; i < nCtx; i++) out.set(od.subarray(i * d, (i + 1) * d), (p.b * nCtx + i) * nEmbd + p.h * d);
    }
    return out;
  };
  return {
    run,
    dispose: () => { for (const p of parts) { p.q.dispose(); p.k.dispose(); p.v.dispose(); } biasT.dispose(); scale.dispose(); },
    info: {
      version: tf.version_core, simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
      multithread: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
    },
  };
}
