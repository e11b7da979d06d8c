// The GPU path's KV cache: K and V in two GPU buffers of the instance's device, laid out as
// the kernels read them, so that a call against the cache uploads only q and the new rows.
// Per batch item, token-major [capacity][kvHeads·d] (one appended token is one contiguous
// write of its kvHeads·d values); 'strided' regroups by residue, [L][ceil(capacity / L)]
// [kvHeads·d] (position p at group p mod L, row floor(p / L)), so that a decode step reads
// its group's keys as consecutive rows. Truncation only moves the length: rows past it are
// never read (the kernels bound every key range by the call's key count). With dtype
// 'float16' the rows are halves, as the half programs read them: twice the tokens per GiB.
/// <reference types="@webgpu/types" />
import { ArgumentError, StateError, UnsupportedError } from '../../errors.js';

const COPY_SRC = 0x4, COPY_DST = 0x8, STORAGE = 0x80;

export interface GpuCacheGeometry {
  batch: number;
  capacity: number;
  kvHeads: number;
  headDim: number;
  /** 'strided' regroups by L; 0 otherwise. */
  regroup: number;
  /** Rows of IEEE halves (dtype 'float16'), else f32. */
  half?: boolean;
}

/** Where the kernels find row r of (batch item b, K/V head kvh, group g): element b·bItem + kvh·d + g·gItem + r·rowStride. */
export interface GpuCacheRegions {
  k: GPUBuffer;
  v: GPUBuffer;
  bItem: number;
  gItem: number;
  rowStride: number;
  regroup: number;
}

export class GpuKvCache {
  readonly groups: number;
  readonly rows: number;
  /** Bytes written into the cache since creation: new rows only, from the host or copied on the device. */
  bytesWritten = 0;
  private k: GPUBuffer | null;
  private v: GPUBuffer | null;
  private readonly kvEmbd: number;
  /** Bytes per value: 4, or 2 for halves. */
  private readonly es: number;

  constructor(private readonly device: GPUDevice, readonly geo: GpuCacheGeometry, maxBinding: number) {
    this.groups = geo.regroup > 0 ? geo.regroup : 1;
    this.rows = Math.ceil(geo.capacity / this.groups);
    this.kvEmbd = geo.kvHeads * geo.headDim;
    this.es = geo.half ? 2 : 4;
    // every row write and copy starts and ends on a 4-byte word, as WebGPU requires
    if ((this.kvEmbd * this.es) % 4 !== 0) {
      throw new UnsupportedError(`a GPU KV cache of halves needs kvHeads·headDim even (got ${geo.kvHeads}·${geo.headDim}): its rows are written in whole 4-byte words`);
    }
    const bytes = geo.batch * this.groups * this.rows * this.kvEmbd * this.es;
    if (bytes > maxBinding) {
      throw new ArgumentError(`a GPU KV cache of ${bytes} bytes per K and V exceeds the device's storage binding limit (${maxBinding} bytes); use a smaller capacity or batch`);
    }
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    this.k = device.createBuffer({ label: 'sparse-attention kv-cache K', size, usage: STORAGE | COPY_DST | COPY_SRC });
    this.v = device.createBuffer({ label: 'sparse-attention kv-cache V', size, usage: STORAGE | COPY_DST | COPY_SRC });
  }

  get bytes(): number {
    return (this.k?.size ?? 0) + (this.v?.size ?? 0);
  }

  regions(): GpuCacheRegions {
    const { k, v } = this.live();
    return { k, v, bItem: this.groups * this.rows * this.kvEmbd, gItem: this.rows * this.kvEmbd, rowStride: this.kvEmbd, regroup: this.groups > 1 ? this.groups : 0 };
  }

  /** Element offset of position p of batch item b. */
  private at(b: number, p: number): number {
    const g = p % this.groups;
    return ((b * this.groups + g) * this.rows + (p - g) / this.groups) * this.kvEmbd;
  }

  /**
   * Writes positions [base, base + n) of every batch item from k, v ([batch, n, kvHeads·d]):
   * one write per batch item (per residue group for 'strided'), of the new rows only.
   */
  append(kNew: Float32Array | Uint16Array, vNew: Float32Array | Uint16Array, base: number, n: number): void {
    if ((kNew instanceof Uint16Array) !== (this.es === 2)) throw new ArgumentError(`a GPU KV cache of ${this.es === 2 ? 'halves' : 'f32'} takes ${this.es === 2 ? 'Uint16Array' : 'Float32Array'} rows`);
    const { k, v } = this.live();
    const e = this.kvEmbd;
    const L = this.groups;
    for (let b = 0; b < this.geo.batch; b++) {
      for (const [src, dst] of [[kNew, k], [vNew, v]] as const) {
        if (L === 1) {
          this.write(dst, this.at(b, base), src.subarray(b * n * e, (b + 1) * n * e));
          continue;
        }
        // the tokens of one residue are consecutive rows of its group: gathered, one write
        for (let g0 = 0; g0 < Math.min(L, n); g0++) {
          const count = Math.ceil((n - g0) / L);
          const run = kNew instanceof Uint16Array ? new Uint16Array(count * e) : new Float32Array(count * e);
          for (let i = 0; i < count; i++) (run as Float32Array).set(src.subarray((b * n + g0 + i * L) * e, (b * n + g0 + i * L + 1) * e), i * e);
          this.write(dst, this.at(b, base + g0), run);
        }
      }
    }
  }

  /**
   * The same from GPU buffers (forwardGPU): copies encoded into `enc`, before the kernels
   * that read them.
   */
  appendFrom(enc: GPUCommandEncoder, kNew: GPUBuffer, vNew: GPUBuffer, base: number, n: number): void {
    const { k, v } = this.live();
    const e = this.kvEmbd;
    const es = this.es;
    const L = this.groups;
    for (let b = 0; b < this.geo.batch; b++) {
      for (const [src, dst] of [[kNew, k], [vNew, v]] as const) {
        if (L === 1) {
          enc.copyBufferToBuffer(src, b * n * e * es, dst, this.at(b, base) * es, n * e * es);
          this.bytesWritten += n * e * es;
          continue;
        }
        for (let i = 0; i < n; i++) enc.copyBufferToBuffer(src, (b * n + i) * e * es, dst, this.at(b, base + i) * es, e * es);
        this.bytesWritten += n * e * es;
      }
    }
  }

  /** Rows past the length are never read: nothing to clear. */
  clear(_from: number, _to: number): void {}

  dispose(): void {
    this.k?.destroy();
    this.v?.destroy();
    this.k = null;
    this.v = null;
  }

  private write(dst: GPUBuffer, elementOffset: number, data: Float32Array | Uint16Array): void {
    // Dawn's Node binding needs an ordinary ArrayBuffer (see webgpu-backend.ts unshared())
    const plain = typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer ? data.slice() : data;
    this.device.queue.writeBuffer(dst, elementOffset * this.es, plain as Float32Array<ArrayBuffer>);
    this.bytesWritten += data.byteLength;
  }

  private live(): { k: GPUBuffer; v: GPUBuffer } {
    if (!this.k || !this.v) throw new StateError('this KV cache was disposed');
    return { k: this.k, v: this.v };
  }
}
