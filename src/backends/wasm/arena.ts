// The CPU engine's linear memory: one WebAssembly.Memory laid out as
//   [0, heapBase)          the kernel's static data
//   [heapBase, tensorTop)  tensors handed out by allocTensor() (zero-copy inputs, outputs)
//   [workStart, workEnd)   the running (or last) call's work area: tables, scratch, copies
// The memory grows to the largest call and is reused; wasm32 caps it at 4 GiB. Tensors are
// 64-byte aligned (one cache line: no false sharing between threads) and come from a free
// list; a free run at the top lowers tensorTop, so the work area moves down.
import { MemoryLimitError } from '../../errors.js';
import { counters, faults } from './faults.js';

const PAGE = 65536;
const MAX_BYTES = 65536 * PAGE; // wasm32: 4 GiB
const ALIGN = 64;

export const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

export const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 4 : 2)} GiB`;

/** A call needs more linear memory than wasm32 (or faults.maxMemoryBytes) allows; nothing was computed. */
function memoryLimitError(needed: number, limit: number, shape: readonly number[]): MemoryLimitError {
  return new MemoryLimitError(
    `a call of shape [${shape.join(', ')}] needs ${gib(needed)} (${needed} bytes) of WebAssembly ` +
      `memory; wasm32 allows at most ${gib(limit)} (${limit} bytes). Larger calls are split by batch item and ` +
      `head; one batch item of one head must fit (use a shorter nCtx, or the webgpu backend)`,
    needed,
    limit,
  );
}

interface Region {
  at: number;
  bytes: number;
}

export class MemoryArena {
  /** Set by the engine while a call uses the work area: tensors then go above it, frees wait. */
  busy = false;
  /** End of the running (or last) call's work area. */
  workEnd = 0;
  private tensorTop: number;
  private readonly freeRegions: Region[] = [];
  /** Each live tensor's data → its byte offset. */
  private readonly tensors = new WeakMap<Float32Array, number>();

  /**
   * `afterCall(f)`: runs f once the calls queued now have settled. `onTopMoved`: tensorTop
   * changed, so the work area (and the tables a call left there) moves.
   */
  constructor(
    readonly memory: WebAssembly.Memory,
    heapBase: number,
    private readonly afterCall: (f: () => void) => void,
    private readonly onTopMoved: () => void,
  ) {
    this.tensorTop = align(heapBase);
  }

  /** First byte of the work area: above every tensor. */
  get workStart(): number {
    return align(this.tensorTop);
  }

  /** Bytes of linear memory in use now (it never shrinks). */
  get bytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** A zeroed tensor of `length` floats (see WasmEngine.allocTensor). */
  allocTensor(length: number): Float32Array {
    const bytes = align(Math.max(4, length * 4));
    let at = -1;
    const i = this.freeRegions.findIndex((r) => r.bytes >= bytes);
    if (i >= 0) {
      const r = this.freeRegions[i];
      at = r.at;
      if (r.bytes === bytes) this.freeRegions.splice(i, 1);
      else this.freeRegions[i] = { at: r.at + bytes, bytes: r.bytes - bytes };
    } else {
      // Above the running call's work area, which is in use until that call settles (then
      // the gap between the old top and the new tensor is free for tensors).
      const top = this.tensorTop;
      at = this.busy ? align(Math.max(top, this.workEnd)) : top;
      if (this.busy) counters.tensorsDuringCalls++;
      if (at > top) this.afterCall(() => this.freeRegion({ at: top, bytes: at - top }));
      try {
        this.reserve(at + bytes, [length]);
      } catch (e) {
        const limit = e instanceof MemoryLimitError ? e.limit : MAX_BYTES;
        throw new MemoryLimitError(
          `createTensor of ${length} floats does not fit: the engine's tensors would need ${gib(at + bytes)} ` +
            `of WebAssembly memory, at most ${gib(limit)} is possible (release tensors, or pass ordinary arrays)`,
          at + bytes,
          limit,
          { cause: e },
        );
      }
      this.tensorTop = at + bytes;
      this.onTopMoved();
    }
    const data = new Float32Array(this.memory.buffer, at, length);
    data.fill(0);
    this.tensors.set(data, at);
    return data;
  }

  /** Returns a tensor's memory for reuse (after the call in flight, if any); false if not one of ours. */
  releaseTensor(data: Float32Array): boolean {
    const at = this.tensors.get(data);
    if (at === undefined) return false;
    this.tensors.delete(data);
    const region = { at, bytes: align(Math.max(4, data.length * 4)) };
    if (this.busy) this.afterCall(() => this.freeRegion(region));
    else this.freeRegion(region);
    return true;
  }

  /** Whether `data` is a live tensor of this arena. */
  isTensor(data: Float32Array): boolean {
    return this.tensors.has(data);
  }

  /** Byte offset of a live tensor holding exactly `length` floats, else -1. */
  tensorAt(data: Float32Array | undefined, length: number): number {
    if (!data || data.length !== length) return -1;
    return this.tensors.get(data) ?? -1;
  }

  /** Grows memory to `end` bytes, or throws before anything was written. */
  reserve(end: number, shape: readonly number[]): void {
    const limit = Math.min(MAX_BYTES, faults.maxMemoryBytes ?? MAX_BYTES);
    if (end > limit) throw memoryLimitError(end, limit, shape);
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    try {
      this.memory.grow(Math.ceil((end - have) / PAGE));
    } catch (e) {
      throw new MemoryLimitError(
        `could not grow WebAssembly memory from ${gib(have)} to ${gib(end)} ` +
          `(${e instanceof Error ? e.message : String(e)}); nothing was computed`,
        end,
        have,
        { cause: e },
      );
    }
  }

  /** Adds a region to the free list, coalesced; a free run at the top lowers tensorTop. */
  private freeRegion(region: Region): void {
    this.freeRegions.push(region);
    this.freeRegions.sort((a, b) => a.at - b.at);
    for (let j = this.freeRegions.length - 1; j > 0; j--) {
      const a = this.freeRegions[j - 1], b = this.freeRegions[j];
      if (a.at + a.bytes === b.at) this.freeRegions.splice(j - 1, 2, { at: a.at, bytes: a.bytes + b.bytes });
    }
    const last = this.freeRegions.at(-1);
    if (last && last.at + last.bytes === this.tensorTop && !this.busy) {
      this.freeRegions.pop();
      this.tensorTop = last.at;
      this.onTopMoved();
    }
  }
}
