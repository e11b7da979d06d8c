// The CPU path's KV cache: K and V kept in engine memory already in the kernel's packed
// form, so a call against the cache packs nothing and an appended token writes only its
// own rows. Per (batch item, K/V head, group): K' [ceil(rows / 4)][d][4] (keys interleaved
// in fours, as the packing phase lays them) and V' [rows][d]. 'strided' keeps one group per
// residue g = position mod L (rows g, g + L, …), so a decode step reads only its group's
// keys, contiguous. Memory: two createTensor-style regions of the threaded engine. With
// dtype 'float16' the values are IEEE halves (the caller's bits, copied, never converted
// here): half the bytes a token, and the attention phase widens each key block it reads.
import { StateError } from '../../errors.js';
import type { WasmEngine } from './engine.js';
import type { CacheRegions, TensorData } from '../backend.js';

export interface CacheGeometry {
  batch: number;
  capacity: number;
  kvHeads: number;
  headDim: number;
  /** 'strided' regroups by L; 0 otherwise. */
  regroup: number;
  /** Values stored as halves (dtype 'float16'). */
  half?: boolean;
}

export class CpuKvCache {
  readonly groups: number;
  readonly rows: number;
  private readonly kRows: number;
  /** The engine tensors holding K' and V' (f32 words; halves are read through k and v). */
  private kMem: Float32Array | null;
  private vMem: Float32Array | null;
  private k: TensorData | null;
  private v: TensorData | null;
  /** Bytes of one value: 2 (halves) or 4. */
  private readonly vb: 2 | 4;
  /** Bytes written into K' and V' by append and clear, counted where they are written. */
  bytesWritten = 0;

  constructor(private readonly engine: WasmEngine, readonly geo: CacheGeometry) {
    this.groups = geo.regroup > 0 ? geo.regroup : 1;
    this.rows = Math.ceil(geo.capacity / this.groups);
    this.kRows = Math.ceil(this.rows / 4) * 4;
    this.vb = geo.half ? 2 : 4;
    const regions = geo.batch * geo.kvHeads * this.groups;
    const words = (values: number) => Math.ceil((values * this.vb) / 4);
    this.kMem = engine.allocTensor(words(regions * this.kRows * geo.headDim));
    this.vMem = engine.allocTensor(words(regions * this.rows * geo.headDim));
    if (!this.kMem || !this.vMem) throw new StateError('a KV cache needs the threaded CPU engine (shared WebAssembly memory)');
    const view = (m: Float32Array) => (geo.half ? new Uint16Array(m.buffer, m.byteOffset, m.length * 2) : m);
    this.k = view(this.kMem);
    this.v = view(this.vMem);
  }

  /** Bytes of engine memory the cache holds. */
  get bytes(): number {
    return ((this.kMem?.length ?? 0) + (this.vMem?.length ?? 0)) * 4;
  }

  regions(): CacheRegions {
    if (!this.kMem || !this.vMem) throw new StateError('this KV cache was disposed');
    return {
      kAt: this.engine.tensorOffset(this.kMem), vAt: this.engine.tensorOffset(this.vMem),
      groups: this.groups, rows: this.rows, kvHeads: this.geo.kvHeads, half: this.vb === 2,
    };
  }

  /** Byte offsets of region (b, kvh, g) in K' and V', relative to kAt / vAt. */
  regionOffsets(b: number, kvh: number, g: number): [number, number] {
    const r = (b * this.geo.kvHeads + kvh) * this.groups + g;
    const d = this.geo.headDim;
    return [r * this.kRows * d * this.vb, r * this.rows * d * this.vb];
  }

  /**
   * Writes rows [base, base + n) of every batch item from k, v ([batch, n, kvHeads·d]) into
   * their places: position p goes to group p mod L (row floor(p / L)), or row p.
   */
  append(kNew: TensorData, vNew: TensorData, base: number, n: number): void {
    const { k, v } = this.live();
    const { batch, kvHeads, headDim: d } = this.geo;
    const step = this.groups;
    for (let b = 0; b < batch; b++) {
      for (let t = 0; t < n; t++) {
        const pos = base + t;
        const g = pos % step;
        const row = (pos - g) / step;
        const src = (b * n + t) * kvHeads * d;
        for (let h = 0; h < kvHeads; h++) {
          const [kOff, vOff] = this.regionOffsets(b, h, g);
          // K'[row / 4][c][row % 4]
          const kBase = kOff / this.vb + (row >> 2) * d * 4 + (row & 3);
          const s = src + h * d;
          for (let c = 0; c < d; c++) k[kBase + 4 * c] = kNew[s + c];
          v.set(vNew.subarray(s, s + d), vOff / this.vb + row * d);
          this.bytesWritten += 2 * d * this.vb;
        }
      }
    }
  }

  /** Zeros positions [from, to) (rolled back rows must not leave stale values in a key group of four). */
  clear(from: number, to: number): void {
    const { k, v } = this.live();
    const { batch, kvHeads, headDim: d } = this.geo;
    const step = this.groups;
    for (let b = 0; b < batch; b++) {
      for (let pos = from; pos < to; pos++) {
        const g = pos % step;
        const row = (pos - g) / step;
        for (let h = 0; h < kvHeads; h++) {
          const [kOff, vOff] = this.regionOffsets(b, h, g);
          const kBase = kOff / this.vb + (row >> 2) * d * 4 + (row & 3);
          for (let c = 0; c < d; c++) k[kBase + 4 * c] = 0;
          v.fill(0, vOff / this.vb + row * d, vOff / this.vb + row * d + d);
          this.bytesWritten += 2 * d * this.vb;
        }
      }
    }
  }

  dispose(): void {
    if (this.kMem) this.engine.releaseTensor(this.kMem);
    if (this.vMem) this.engine.releaseTensor(this.vMem);
    this.k = this.v = this.kMem = this.vMem = null;
  }

  private live(): { k: TensorData; v: TensorData } {
    if (!this.k || !this.v) throw new StateError('this KV cache was disposed');
    return { k: this.k, v: this.v };
  }
}
