// The dense layers' matrix product, two implementations behind one interface:
//   'wasm'  dense.{relaxed,simd}.wasm (assembly/dense.ts): 4×8 register tiles over weights
//           packed in 8-column panels, in the module's own memory
//   'js'    plain Float32Array loops: W kept [out, in] so each output is a contiguous dot
//           product, 4 rows × 2 outputs per pass so every loaded value is used twice or more
// Both give y[n, out] (+)= x[n, in] · Wᵀ for W [out, in] as stored by torch.nn.Linear, and
// SwiGLU's gate g = silu(g) ⊙ u (the wasm one with a vectorised exp).
// The README's "Dense layers" section has the measurements that chose 'wasm' as the default.

/** The two kernel builds' bytes are small; relaxed SIMD (FMA) is taken where it validates. */
export const WASM_FILES = { relaxed: 'dense.relaxed.wasm', simd: 'dense.simd.wasm' };
/** The same kernels importing a shared memory, for dense-threads.mjs. */
export const WASM_MT_FILES = { relaxed: 'dense.relaxed.mt.wasm', simd: 'dense.simd.mt.wasm' };

/**
 * A dense engine: `alloc(n)` returns zeroed Float32Arrays the engine can compute on,
 * `weight(w, out, inp)` turns a [out, inp] f32 matrix into its own form, and
 * `matmul(x, W, y, n, acc)` computes y[0:n] (+)= x[0:n] · Wᵀ.
 * `reserve(floats)` must be called before the first alloc with the total the model needs
 * (the wasm memory grows once, so the views stay valid).
 */
export class JsDense {
  constructor() {
    this.name = 'js';
  }
  reserve() {}
  dispose() {}
  alloc(n) {
    return new Float32Array(n);
  }
  weight(w, out, inp) {
    return { w: Float32Array.from(w), out, inp };
  }
  matmul(x, W, y, n, acc) {
    const { w, out, inp } = W;
    let r = 0;
    for (; r + 4 <= n; r += 4) {
      const x0 = r * inp, x1 = x0 + inp, x2 = x1 + inp, x3 = x2 + inp;
      const y0 = r * out;
      let o = 0;
      for (; o + 2 <= out; o += 2) {
        const wa = o * inp, wb = wa + inp;
        let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
        for (let i = 0; i < inp; i++) {
          const a = w[wa + i], b = w[wb + i];
          const v0 = x[x0 + i], v1 = x[x1 + i], v2 = x[x2 + i], v3 = x[x3 + i];
          s00 += v0 * a; s01 += v0 * b;
          s10 += v1 * a; s11 += v1 * b;
          s20 += v2 * a; s21 += v2 * b;
          s30 += v3 * a; s31 += v3 * b;
        }
        if (acc) {
          y[y0 + o] += s00; y[y0 + o + 1] += s01;
          y[y0 + out + o] += s10; y[y0 + out + o + 1] += s11;
          y[y0 + 2 * out + o] += s20; y[y0 + 2 * out + o + 1] += s21;
          y[y0 + 3 * out + o] += s30; y[y0 + 3 * out + o + 1] += s31;
        } else {
          y[y0 + o] = s00; y[y0 + o + 1] = s01;
          y[y0 + out + o] = s10; y[y0 + out + o + 1] = s11;
          y[y0 + 2 * out + o] = s20; y[y0 + 2 * out + o + 1] = s21;
          y[y0 + 3 * out + o] = s30; y[y0 + 3 * out + o + 1] = s31;
        }
      }
      for (; o < out; o++) for (let j = 0; j < 4; j++) this.dot(x, (r + j) * inp, w, o * inp, inp, y, (r + j) * out + o, acc);
    }
    for (; r < n; r++) {
      for (let o = 0; o < out; o++) this.dot(x, r * inp, w, o * inp, inp, y, r * out + o, acc);
    }
  }
  swiglu(g, u, count) {
    for (let i = 0; i < count; i++) {
      const a = g[i];
      g[i] = (a / (1 + Math.exp(-a))) * u[i];
    }
  }
  dot(x, xo, w, wo, inp, y, yo, acc) {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let i = 0;
    for (; i + 4 <= inp; i += 4) {
      s0 += x[xo + i] * w[wo + i];
      s1 += x[xo + i + 1] * w[wo + i + 1];
      s2 += x[xo + i + 2] * w[wo + i + 2];
      s3 += x[xo + i + 3] * w[wo + i + 3];
    }
    for (; i < inp; i++) s0 += x[xo + i] * w[wo + i];
    const s = s0 + s1 + (s2 + s3);
    y[yo] = acc ? y[yo] + s : s;
  }
}

/** Reorders W [out, inp] into panels Wp[out/8][inp][8] (the kernel reads 8 outputs' weights per input). */
export function packPanels(w, out, inp, dst) {
  for (let p = 0; p < out / 8; p++) {
    for (let i = 0; i < inp; i++) {
      const d = (p * inp + i) * 8;
      for (let c = 0; c < 8; c++) dst[d + c] = w[(p * 8 + c) * inp + i];
    }
  }
}

export class WasmDense {
  /** @param {WebAssembly.Instance} instance  @param {string} variant  @param {WebAssembly.Memory} [memory] an imported one */
  constructor(instance, variant, memory = instance.exports.memory) {
    this.name = `wasm ${variant}`;
    this.exports = instance.exports;
    this.memory = memory;
    this.top = 65536; // the kernel has no static data; keep clear of its first page anyway
    this.reserved = 0;
  }
  reserve(floats) {
    const need = this.top + floats * 4 + 64 * 1024;
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / 65536));
    this.reserved = this.memory.buffer.byteLength;
  }
  alloc(n) {
    const bytes = n * 4;
    if (this.top + bytes > this.reserved) throw new Error(`sparse-lm: dense memory exhausted (${n} floats past the reserved ${this.reserved} bytes)`);
    const a = new Float32Array(this.memory.buffer, this.top, n);
    this.top += (bytes + 63) & ~63;
    return a;
  }
  weight(w, out, inp) {
    if (out % 8) throw new Error(`sparse-lm: the wasm dense kernel needs outputs in multiples of 8 (got ${out})`);
    const p = this.alloc(out * inp);
    packPanels(w, out, inp, p);
    return { p, out, inp };
  }
  matmul(x, W, y, n, acc) {
    this.exports.matmul(x.byteOffset, W.p.byteOffset, y.byteOffset, n, W.inp, W.out, acc ? 1 : 0, 0, W.out / 8);
  }
  swiglu(g, u, count) {
    this.exports.swiglu(g.byteOffset, u.byteOffset, 0, count);
  }
  dispose() {}
}

/**
 * A dense engine. `wasm`: a WebAssembly.Module, or { relaxed, simd } bytes/modules (the first
 * that validates and compiles is used), or undefined for 'js'. `threads` > 1 with
 * `wasmThreaded` ({ relaxed, simd } bytes of the .mt builds): dense-threads.mjs's engine,
 * falling back to one thread where workers or shared memory are missing (`fallback` says why).
 */
export async function createDense(kind, wasm, { threads = 1, wasmThreaded } = {}) {
  if (kind === 'js') return new JsDense();
  if (threads > 1 && wasmThreaded) {
    const { createThreadedDense } = await import('./dense-threads.mjs');
    const r = await createThreadedDense(wasmThreaded, threads);
    if (r.dense) return r.dense;
    const single = await createDense(kind, wasm);
    single.fallback = r.why;
    return single;
  }
  if (!wasm) throw new Error("sparse-lm: dense 'wasm' needs the kernel module (or bytes); pass dense: 'js' for plain JS");
  if (wasm instanceof WebAssembly.Module) return new WasmDense(await WebAssembly.instantiate(wasm, {}), 'module');
  const errors = [];
  for (const variant of ['relaxed', 'simd']) {
    const src = wasm[variant];
    if (!src) continue;
    try {
      const mod = src instanceof WebAssembly.Module ? src : WebAssembly.validate(src) ? await WebAssembly.compile(src) : null;
      if (!mod) {
        errors.push(`${variant}: does not validate here`);
        continue;
      }
      return new WasmDense(await WebAssembly.instantiate(mod, {}), variant);
    } catch (e) {
      errors.push(`${variant}: ${e.message}`);
    }
  }
  throw new Error(`sparse-lm: no dense wasm build runs here (${errors.join('; ')})`);
}
