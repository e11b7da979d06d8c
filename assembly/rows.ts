// Moving rows between the tensors and the kernel's layouts: packing K and V (phase 1),
// Q in transposed and scaled, O out transposed and normalised. 4×4 transposes on SIMD builds.

/** Copies one row of `bytes` bytes (inline vector moves: memory.copy leaves the JIT code). */
// @ts-ignore: decorator
@inline export function copyRow(dst: usize, src: usize, bytes: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const bytes16 = bytes & ~15;
    for (; i < bytes16; i += 16) v128.store(dst + i, v128.load(src + i));
  }
  for (; i < bytes; i += 4) store<f32>(dst + i, load<f32>(src + i));
}

/** dst[k][i] = src[i][k] for keys i < n (of 4), k < d; the 4 keys of a group interleaved. */
export function packKeys4(dst: usize, src: usize, stride: usize, n: i32, d: usize): void {
  let k: usize = 0;
  if (ASC_FEATURE_SIMD && n == 4) {
    for (; k + 4 <= d; k += 4) {
      const a = v128.load(src + (k << 2));
      const b = v128.load(src + stride + (k << 2));
      const c = v128.load(src + 2 * stride + (k << 2));
      const e = v128.load(src + 3 * stride + (k << 2));
      const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
      const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
      const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
      const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
      const p = dst + (k << 4);
      v128.store(p, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
      v128.store(p, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
      v128.store(p, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
      v128.store(p, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
    }
  }
  for (; k < d; k++) {
    for (let i = 0; i < 4; i++) {
      store<f32>(dst + (k << 4) + (<usize>i << 2), i < n ? load<f32>(src + <usize>i * stride + (k << 2)) : 0);
    }
  }
}

/** dst[k][r] = src[r][k] · scale for r < rows, 0 for rows <= r < bs. */
export function loadQueryT(dst: usize, src: usize, stride: usize, rows: i32, d: i32, bs: i32, scale: f32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const sc = f32x4.splat(scale);
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const s0 = src + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        const off = <usize>k << 2;
        const a = f32x4.mul(v128.load(s0 + off), sc);
        const b = f32x4.mul(v128.load(s0 + stride + off), sc);
        const c = f32x4.mul(v128.load(s0 + 2 * stride + off), sc);
        const e = f32x4.mul(v128.load(s0 + 3 * stride + off), sc);
        // 4×4 transpose: rows r..r+3 × dims k..k+3 -> dims × rows
        const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
        const p = dst + (<usize>k * ubs + <usize>r) * 4;
        v128.store(p, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(p + ubs * 4, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
        v128.store(p + ubs * 8, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
        v128.store(p + ubs * 12, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          store<f32>(dst + (<usize>k * ubs + <usize>(r + i)) * 4, load<f32>(s0 + <usize>i * stride + (<usize>k << 2)) * scale);
        }
      }
    }
  }
  for (; r < bs; r++) {
    const s0 = src + <usize>r * stride;
    const live = r < rows;
    for (let k = 0; k < d; k++) {
      store<f32>(dst + (<usize>k * ubs + <usize>r) * 4, live ? load<f32>(s0 + (<usize>k << 2)) * scale : 0);
    }
  }
}

/** dst[r][k] = ot[k][r] · inv[r] for r < rows. */
export function storeOutput(dst: usize, stride: usize, ot: usize, inv: usize, rows: i32, d: i32, bs: i32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const iv = v128.load(inv + (<usize>r << 2));
      const d0 = dst + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        const p = ot + (<usize>k * ubs + <usize>r) * 4;
        const a = f32x4.mul(v128.load(p), iv);
        const b = f32x4.mul(v128.load(p + ubs * 4), iv);
        const c = f32x4.mul(v128.load(p + ubs * 8), iv);
        const e = f32x4.mul(v128.load(p + ubs * 12), iv);
        const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
        const off = <usize>k << 2;
        v128.store(d0 + off, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(d0 + stride + off, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
        v128.store(d0 + 2 * stride + off, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
        v128.store(d0 + 3 * stride + off, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          store<f32>(d0 + <usize>i * stride + (<usize>k << 2), load<f32>(ot + (<usize>k * ubs + <usize>(r + i)) * 4) * load<f32>(inv + (<usize>(r + i) << 2)));
        }
      }
    }
  }
  for (; r < rows; r++) {
    const d0 = dst + <usize>r * stride;
    const iv = load<f32>(inv + (<usize>r << 2));
    for (let k = 0; k < d; k++) {
      store<f32>(d0 + (<usize>k << 2), load<f32>(ot + (<usize>k * ubs + <usize>r) * 4) * iv);
    }
  }
}
