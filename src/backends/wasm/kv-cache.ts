// The CPU path's KV cache: K and V kept in engine memory already in the kernel's packed
// form, so a call against the cache packs nothing and an appended token writes only its
// own rows. Per (batch item, K/V head, group): K' [ceil(rows / 4)][d][4] (keys interleaved
// in fours, as the packing phase lays them) and V' [rows][d]. 'strided' keeps one group per
// residue g = position mod L (rows g, g + L, …), so a decode step reads only its group's
// keys, contiguous. Memory: two createTensor-style regions of the threaded engine.
import { StateError } from '../../errors.js';
import type { WasmEngine } from './engine.js';
import type { CacheRegions } from '../backend.js';

export interface CacheGeometry {
  batch: number;
  capacity: number;
  kvHeads: number;
  headDim: number;
  /** 'strided' regroups by L; 0 otherwise. */
  regroup: number;
}

export class CpuKvCache {
  readonly groups: number;
  readonly rows: number;
  private readonly kRows: number;
  private k: Float32Array | null;
  private v: Float32Array | null;
  /** Bytes written into K' and V' by append and clear, counted where they are written. */
  bytesWritten = 0;

  constructor(private readonly engine: WasmEngine, readonly geo: CacheGeometry) {
    this.groups = geo.regroup > 0 ? geo.regroup : 1;
    this.rows = Math.ceil(geo.capacity / this.groups);
    this.kRows = Math.ceil(this.rows / 4) * 4;
    const regions = geo.batch * geo.kvHeads * this.groups;
    this.k = engine.allocTensor(regions * this.kRows * geo.headDim);
    this.v = engine.allocTensor(regions * this.rows * geo.headDim);
    if (!this.k || !this.v) throw new StateError('a KV cache needs the threaded CPU engine (shared WebAssembly memory)');
  }

  /** Bytes of engine memory the cache holds. */
  get bytes(): number {
    return ((this.k?.length ?? 0) + (this.v?.length ?? 0)) * 4;
  }

  regions(): CacheRegions {
    const { k, v } = this.live();
    return { kAt: this.engine.tensorOffset(k), vAt: this.engine.tensorOffset(v), groups: this.groups, rows: this.rows, kvHeads: this.geo.kvHeads };
  }

  /** Byte offsets of region (b, kvh, g) in K' and V', relative to kAt / vAt. */
  regionOffsets(b: number, kvh: number, g: number): [number, number] {
    const r = (b * this.geo.kvHeads + kvh) * this.groups + g;
    const d = this.geo.headDim;
    return [r * this.kRows * d * 4, r * this.rows * d * 4];
  }

  /**
   * Writes rows [base, base + n) of every batch item from k, v ([batch, n, kvHeads·d]) into
   * their places: position p goes to group p mod L (row floor(p / L)), or row p.
   */
  append(kNew: Float32Array, vNew: Float32Array, base: number, n: number): void {
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
          const kBase = kOff / 4 + (row >> 2) * d * 4 + (row & 3);
          const s = src + h * d;
          for (let c = 0; c < d; c++) k[kBase + 4 * c] = kNew[s + c];
          v.set(vNew.subarray(s, s + d), vOff / 4 + row * d);
          this.bytesWritten += 2 * d * 4;
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
          const kBase = kOff / 4 + (row >> 2) * d * 4 + (row & 3);
          for (let c = 0; c < d; c++) k[kBase + 4 * c] = 0;
          v.fill(0, vOff / 4 + row * d, vOff / 4 + row * d + d);
          this.bytesWritten += 2 * d * 4;
        }
      }
    }
  }

  dispose(): void {
    if (this.k) this.engine.releaseTensor(this.k);
    if (this.v) this.engine.releaseTensor(this.v);
    this.k = this.v = null;
  }

  private live(): { k: Float32Array; v: Float32Array } {
    if (!this.k || !this.v) throw new StateError('this KV cache was disposed');
    return { k: this.k, v: this.v };
  }
}
