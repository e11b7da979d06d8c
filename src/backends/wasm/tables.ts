// ABI marshalling: lays a call out in the work area of linear memory (abi.ts says what the
// kernel reads where) and copies its tensors in and out. The tables of the last call are
// kept: a call of the same plan shape, threads and tensors reuses them and only resets
// the counters and copies its inputs.
import { type Plan, packedSegments } from '../../plan.js';
import { KernelError } from '../../errors.js';
import { checkStillWhole } from '../../whole.js';
import {
  DTYPE_HALF_IO, DTYPE_HALF_KV, type KernelExports, MOD_ALIBI, MOD_LSE, MOD_SINKS, MOD_SOFTCAP, P, PACK_ROWS, PARAMS_BYTES, SEQ, SEQ_MOD,
  SEQ_MOD_WORDS, SEQ_WORDS, TASK, TASK_WORDS,
} from './abi.js';
import { type Modifiers, scaleOf } from '../../config-mods.js';
import { type MemoryArena, align } from './arena.js';
import { maskRecordWords, maskRecords } from './masks.js';
import { tasksOf, workOf } from './tasks.js';
import type { CacheRegions, TensorData } from '../backend.js';

/** Floats of k (and of v): [batch, nK, kvHeads · headDim]. */
function kvLength(plan: Plan): number {
  return plan.batch * plan.nK * plan.kvHeads * plan.headDim;
}

/** Bytes of one stored value: 2 for dtype 'float16' (halves, as Uint16Array bits), else 4. */
export function valueBytes(plan: Pick<Plan, 'dtype'>): 2 | 4 {
  return plan.dtype === 'float16' ? 2 : 4;
}

/**
 * What a call computes: its plan and tensors (q, out [batch, nCtx, nEmbd]; k, v [batch, nK,
 * kvHeads·d]; row-major f32, or half bits in a Uint16Array for dtype 'float16').
 */
export interface CallData {
  plan: Plan;
  q: TensorData;
  k: TensorData;
  v: TensorData;
  /** Where the result goes (a tensor of this engine: written in place, no copy); else a new array. */
  out?: TensorData;
  /** K and V come from a KV cache, already packed (k and v are not read): its regions. */
  cache?: CacheRegions;
  /** The score modifiers of the call (none when absent). */
  mods?: Modifiers;
  /** Receives each row's logsumexp, [batch][heads][nCtx] (natural log). */
  lse?: Float32Array;
}

/** params.mods of a call: which modifiers and outputs its kernel runs (0: the plain kernel). */
function modFlags(mods: Modifiers | undefined, lse: boolean): number {
  return (mods && mods.softcap > 0 ? MOD_SOFTCAP : 0) | (mods?.alibi ? MOD_ALIBI : 0) | (mods?.sinks ? MOD_SINKS : 0) | (lse ? MOD_LSE : 0);
}

/** Byte offsets of a laid-out call's pieces. */
interface Tables {
  key: string;
  params: number;
  counter: number;
  packCounter: number;
  barrier: number;
  nTasks: number;
  /** Per thread. */
  scratch: number[];
  qAt: number;
  kAt: number;
  vAt: number;
  oAt: number;
  /** The per-head modifier values ([heads][2] f32) and the lse rows, when the call has them (else 0). */
  headModsAt: number;
  lseAt: number;
  /** End of the work area. */
  end: number;
}

/** A call ready to run: where its parameters and counters lie, and its copies in and out. */
export interface Job {
  params: number;
  counter: number;
  barrier: number;
  nTasks: number;
  scratch: readonly number[];
  outLength: number;
  /** Copies q in (threaded calls do it while the workers pack K and V). */
  copyQ(): void;
  /** A new result array of the call's type. */
  alloc(): TensorData;
  /** The result, into `out` (unless the output is a tensor of this engine, written in place). */
  read(out: TensorData): TensorData;
}

const layoutIds = new WeakMap<object, number>();
let nextLayoutId = 1;

/** Identifies the tables of a call: same layouts object and head → layout map, shape, key lengths, threads. */
function staticKey(plan: Plan, threads: number, parties: number): string {
  let id = layoutIds.get(plan.layouts);
  if (id === undefined) layoutIds.set(plan.layouts, (id = nextLayoutId++));
  return `${id}|${plan.dtype}|${plan.batch}|${plan.nCtx}|${plan.nK}|${plan.nEmbd}|${plan.heads}|${plan.kvHeads}|${plan.headLayout.join(',')}|${plan.blockSize}|` +
    `${plan.keyLengths?.join(',') ?? ''}|${plan.seqLengths?.join(',') ?? ''}|${threads}|${parties}`;
}

export class CallTables {
  private last: Tables | null = null;

  constructor(
    private readonly arena: MemoryArena,
    private readonly kernel: KernelExports,
  ) {}

  /** Forgets the last call's tables (they moved, or a failed call may have altered them). */
  invalidate(): void {
    this.last = null;
  }

  /**
   * Writes everything one call needs into linear memory; returns where it lies.
   * `parties`: threads at the barrier between packing and attention.
   */
  layOut(call: CallData, threads: number, parties = threads): Job {
    const { plan } = call;
    const memory = this.arena.memory;
    const n = plan.batch * plan.nCtx * plan.nEmbd;
    const nKV = kvLength(plan);
    // The caller's arrays may have been detached or swapped since the call was made.
    checkStillWhole({ 'q.data': call.q, out: call.out }, n);
    if (!call.cache) checkStillWhole({ 'k.data': call.k, 'v.data': call.v }, nKV);
    // Tensors of this engine are read and written in place (their offsets join the key);
    // a cache's K and V are read where they lie (-2: neither copied nor packed).
    // (engine tensors are f32: half inputs are always copied in)
    const resident = [call.q, call.k, call.v, call.out].map((t, i) => (call.cache && (i === 1 || i === 2) ? -2 : t instanceof Float32Array ? this.arena.tensorAt(t, i === 1 || i === 2 ? nKV : n) : -1));
    const c = call.cache;
    const cacheKey = c ? `${c.kAt},${c.vAt},${c.rows},${c.half}` : '';
    const flags = modFlags(call.mods, !!call.lse);
    const key = `${staticKey(plan, threads, parties)}|${this.arena.workStart}|${resident.join(',')}|${cacheKey}|${flags}`;
    if (this.last?.key !== key) this.last = { key, ...writeTables(this.arena, this.kernel, plan, threads, parties, resident, c, flags) };
    const { params, counter, packCounter, barrier, nTasks, scratch, qAt, kAt, vAt, oAt, headModsAt, lseAt, end } = this.last;
    this.arena.workEnd = end;
    const i32 = new Int32Array(memory.buffer);
    // The modifiers' values are the instance's (engines are shared): written every call.
    const f32 = new Float32Array(memory.buffer);
    // With a soft cap the kernel's scores are S / softcap (its tanh's argument): Q is scaled by that too.
    const mods = call.mods;
    f32[(params >> 2) + P.scale] = mods && flags & MOD_SOFTCAP ? scaleOf(mods, plan.headDim) / mods.softcap
      : mods?.scale != null ? Math.LOG2E * mods.scale : Math.LOG2E / Math.sqrt(plan.headDim);
    if (flags !== 0) {
      const m = call.mods;
      f32[(params >> 2) + P.softcap] = (m?.softcap ?? 0) * Math.LOG2E;
      for (let h = 0; h < plan.heads; h++) {
        f32[(headModsAt >> 2) + 2 * h] = (m?.alibi?.[h] ?? 0) * Math.LOG2E;
        f32[(headModsAt >> 2) + 2 * h + 1] = (m?.sinks?.[h] ?? 0) * Math.LOG2E;
      }
    }
    const nLse = plan.batch * plan.heads * plan.nCtx;
    if (call.lse && call.lse.length !== nLse) throw new KernelError('internal error: lse length');
    const half = plan.dtype === 'float16';
    // one view of the values' type; >>> shifts: offsets past 2 GiB stay positive
    const values = () => (half ? new Uint16Array(memory.buffer) : new Float32Array(memory.buffer));
    const shift = half ? 1 : 2;
    i32[counter >> 2] = 0;
    i32[packCounter >> 2] = 0;
    i32[barrier >> 2] = 0;
    if (resident[1] === -1) values().set(call.k, kAt >>> shift);
    if (resident[2] === -1) values().set(call.v, vAt >>> shift);
    return {
      params,
      counter,
      barrier,
      nTasks,
      scratch,
      outLength: n,
      copyQ: () => {
        if (resident[0] < 0) values().set(call.q, qAt >>> shift);
      },
      alloc: () => (half ? new Uint16Array(n) : new Float32Array(n)),
      read: (out: TensorData) => {
        checkStillWhole({ out }, n);
        if (resident[3] < 0) out.set(half ? new Uint16Array(memory.buffer, oAt, n) : new Float32Array(memory.buffer, oAt, n));
        if (call.lse) {
          checkStillWhole({ lse: call.lse }, nLse);
          call.lse.set(new Float32Array(memory.buffer, lseAt, nLse));
        }
        return out;
      },
    };
  }
}

/**
 * The call's tables in the work area, above the tensors. `resident`: byte offsets of q, k,
 * v, o when they are tensors of this engine, else -1 (then the work area holds a copy).
 */
function writeTables(
  arena: MemoryArena,
  kernel: KernelExports,
  plan: Plan,
  threads: number,
  parties: number,
  resident: readonly number[],
  cache: CacheRegions | undefined,
  flags: number,
): Omit<Tables, 'key'> {
  const bs = plan.blockSize;
  const d = plan.headDim;
  const work = workOf(plan, !!cache);
  const { seqs, layouts, qHeads } = work;
  const tasks = tasksOf(plan, work, threads);

  // Linear memory map, from the work area's start:
  // params · counters · seqs [nSeq][SEQ_WORDS] · tasks [nTask][TASK_WORDS] · layouts · scratch × threads
  // · (modifiers) [heads][2] f32 · [nSeq][SEQ_MOD_WORDS] · lse [batch, heads, nCtx] f32
  // · q [batch, nCtx, nEmbd] · k v [batch, nK, kvHeads·d] · o [batch, nCtx, nEmbd]
  // · K' V' (K, V rows packed per sequence, [nK][d] each)
  let at = arena.workStart;
  const take = (bytes: number) => {
    const p = at;
    at = align(at + bytes);
    return p;
  };
  const params = take(PARAMS_BYTES);
  const counter = take(4);
  const packCounter = take(4);
  const barrier = take(4);
  const seqTable = take(seqs.length * SEQ_WORDS * 4);
  const taskTable = take(tasks.length * TASK_WORDS * 4);
  const layoutAt = layouts.map((l) => {
    const nnz = l.cols.length;
    return {
      rowPtr: take(l.rowPtr.length * 4),
      cols: take(nnz * 4),
      maskIds: take(nnz * 4),
      masks: take(l.masks.length * maskRecordWords(bs) * 4),
    };
  });
  // The scratch layout is the kernel's own business: it says how much it needs.
  const sBytes = align(kernel.bsattn_scratch_bytes(d, bs));
  const scratch = Array.from({ length: threads }, () => take(sBytes));
  const headModsAt = flags !== 0 ? take(plan.heads * 2 * 4) : 0;
  const seqModsAt = flags !== 0 ? take(seqs.length * SEQ_MOD_WORDS * 4) : 0;
  const lseAt = flags & MOD_LSE ? take(plan.batch * plan.heads * plan.nCtx * 4) : 0;
  const eb = valueBytes(plan);
  const tensorBytes = plan.batch * plan.nCtx * plan.nEmbd * eb;
  const kvBytes = kvLength(plan) * eb;
  const [qAt, kAt, vAt, oAt] = resident.map((r, i) => (r >= 0 || r === -2 ? r : take(i === 1 || i === 2 ? kvBytes : tensorBytes)));
  // K' [ceil(nK/4)][d][4] (keys interleaved in fours) and V' [nK][d] per (batch, K/V head,
  // group), packed by the kernel's first phase (f32, whatever the inputs' type) by the first
  // sequence that reads them; with a cache, its regions, f32 or halves as the cache stores
  // them. Query heads of one K/V head share them.
  const cb = cache?.half ? 2 : 4;
  const packedBy = new Map<string, number>();
  // Sequence i is (unit, head, group) in order: unit i / (heads / qHeads · groups), group i mod groups.
  const perUnit = (plan.heads / qHeads) * (plan.regroup > 0 ? Math.min(plan.regroup, plan.nK) : 1);
  const packedAt = seqs.map((s, i) => {
    if (!cache) {
      const key = `${Math.floor(i / perUnit)},${s.kvh},${s.token0}`;
      const first = packedBy.get(key);
      if (first !== undefined) return [0, 0, first];
      packedBy.set(key, i);
      return [take(Math.ceil(s.nK / 4) * 4 * d * 4), take(s.nK * d * 4), i];
    }
    const r = (s.b * cache.kvHeads + s.kvh) * cache.groups + (plan.regroup > 0 ? s.token0 : 0);
    return [cache.kAt + r * Math.ceil(cache.rows / 4) * 4 * d * cb, cache.vAt + r * cache.rows * d * cb, i];
  });
  arena.reserve(at, [plan.batch, plan.nCtx, plan.nEmbd]);

  const i32 = new Int32Array(arena.memory.buffer);
  const p = params >> 2;
  i32[p + P.tasks] = taskTable;
  i32[p + P.nTasks] = tasks.length;
  i32[p + P.counter] = counter;
  i32[p + P.seqs] = seqTable;
  i32[p + P.headDim] = d;
  i32[p + P.block] = bs;
  // (scale, softcap and the per-head values: layOut, every call)
  i32[p + P.mods] = flags;
  i32[p + P.headMods] = headModsAt;
  i32[p + P.seqMods] = seqModsAt;
  i32[p + P.nSeqs] = seqs.length;
  i32[p + P.packCounter] = packCounter;
  i32[p + P.barrier] = barrier;
  i32[p + P.threads] = parties;
  // Packing tasks: (batch, group) units × chunks of PACK_ROWS tokens; sequence (b, h, g)
  // is entry (b·heads + h)·groups + g, which forEachSequence's order guarantees.
  const groups = plan.regroup > 0 ? Math.min(plan.regroup, plan.nK) : 1;
  // Units: batch items, or the packed sequences (seqLengths), each its own rows.
  const segments = plan.seqLengths ? packedSegments(plan) : null;
  const units = segments ? segments.length : plan.batch;
  const seqHeads = plan.heads / qHeads;
  if (!cache && seqs.length !== units * seqHeads * groups) throw new KernelError('internal error: sequence count');
  i32[p + P.heads] = seqHeads;
  i32[p + P.groups] = groups;
  // With a cache there is nothing to pack (and the table holds only sequences with queries).
  i32[p + P.packUnits] = cache ? 0 : units * groups;
  // Key rows of the longest sequence: what a (batch, group) unit packs.
  const longest = segments ? Math.max(0, ...segments.map((x) => x[1])) : plan.nK;
  const keyRows = plan.regroup > 0 ? Math.ceil(longest / plan.regroup) : longest;
  i32[p + P.packChunks] = Math.ceil(keyRows / PACK_ROWS);
  i32[p + P.dtype] = (eb === 2 ? DTYPE_HALF_IO : 0) | (cache?.half ? DTYPE_HALF_KV : 0);

  const rowBytes = plan.nEmbd * eb;
  const kvRowBytes = plan.kvHeads * d * eb;
  seqs.forEach((s, i) => {
    const e = (seqTable >> 2) + i * SEQ_WORDS;
    // q and out rows from the sequence's first query; K and V from its first key, of its K/V head
    const first = (s.b * plan.nCtx + s.qToken0) * rowBytes + s.h * d * eb;
    const kvFirst = (s.b * plan.nK + s.token0) * kvRowBytes + s.kvh * d * eb;
    const l = layoutAt[s.layout];
    i32[e + SEQ.q] = qAt + first;
    i32[e + SEQ.o] = oAt + first;
    i32[e + SEQ.stride] = s.step * rowBytes;
    const [kP, vP, packer] = packedAt[i];
    i32[e + SEQ.k] = packer === i ? kP : packedAt[packer][0];
    i32[e + SEQ.v] = packer === i ? vP : packedAt[packer][1];
    i32[e + SEQ.kvStride] = d * (cache ? cb : 4);
    // 0: nothing to pack (a cache; or another sequence packs this K/V head)
    const packs = !cache && packer === i;
    i32[e + SEQ.kSrc] = packs ? kAt + kvFirst : 0;
    i32[e + SEQ.vSrc] = packs ? vAt + kvFirst : 0;
    i32[e + SEQ.srcStride] = s.step * kvRowBytes;
    i32[e + SEQ.nQ] = s.nQ;
    i32[e + SEQ.qHeads] = s.qHeads;
    i32[e + SEQ.nK] = s.nK;
    i32[e + SEQ.rowPtr] = l.rowPtr;
    i32[e + SEQ.cols] = l.cols;
    i32[e + SEQ.maskIds] = l.maskIds;
    i32[e + SEQ.masks] = l.masks;
    if (flags === 0) return;
    // Positions (bottom-right, packed sequences from their start): query row r of the sequence
    // is at key row qPos + r, whose rows are `step` tokens apart.
    const off = plan.seqLengths ? 0 : plan.nK - plan.nCtx;
    const m = (seqModsAt >> 2) + i * SEQ_MOD_WORDS;
    i32[m + SEQ_MOD.lse] = lseAt ? lseAt + ((s.b * plan.heads + s.h) * plan.nCtx + s.qToken0) * 4 : 0;
    i32[m + SEQ_MOD.lseRow] = s.step * 4;
    i32[m + SEQ_MOD.lseHead] = plan.nCtx * 4;
    i32[m + SEQ_MOD.head] = s.h;
    i32[m + SEQ_MOD.qPos] = (s.qToken0 + off - s.token0) / s.step;
    i32[m + SEQ_MOD.dist] = s.step;
  });
  tasks.forEach((t, i) => {
    const e = (taskTable >> 2) + i * TASK_WORDS;
    i32[e + TASK.seq] = t.seq;
    i32[e + TASK.qb0] = t.qb0;
    i32[e + TASK.qb1] = t.qb1;
  });
  layouts.forEach((l, li) => {
    i32.set(l.rowPtr, layoutAt[li].rowPtr >> 2);
    i32.set(l.cols, layoutAt[li].cols >> 2);
    i32.set(l.maskIds, layoutAt[li].maskIds >> 2);
    i32.set(maskRecords(l), layoutAt[li].masks >> 2);
  });
  return { params, counter, packCounter, barrier, nTasks: tasks.length, scratch, qAt, kAt, vAt, oAt, headModsAt, lseAt, end: at };
}
