// How a call is cut into work: its sequences (one per batch item, head and group, in
// forEachSequence's order; with GQA one per K/V head instead, its query heads as row groups,
// see group.ts) and its attention tasks, runs of query blocks of one sequence that the
// threads take from a shared counter, most expensive first.
import { type Plan, type Sequence, forEachSequence } from '../../plan.js';
import type { BlockLayout } from '../../layout/block-layout.js';
import { groupedLayout, qHeadsOf } from './group.js';

/** Work of one task at most (FLOPs, ~20–50 ms on one core): bounds how long an aborted call runs on. */
const TASK_FLOPS = 5e8;

export interface Task {
  seq: number;
  qb0: number;
  qb1: number;
  /** Block pairs to compute: the queue's order. */
  cost: number;
}

/** A kernel sequence: `qHeads` query heads from h on (one, or a GQA group); `layout` indexes Work.layouts. */
export interface KernelSequence extends Sequence {
  qHeads: number;
}

/** The call's kernel sequences and the block layouts they run (the plan's, or grouped from them). */
export interface Work {
  seqs: KernelSequence[];
  layouts: readonly BlockLayout[];
  /** Query heads per sequence: 1, or heads / kvHeads (group.ts). */
  qHeads: number;
}

/**
 * The call's sequences, every (batch, head or K/V head, group) in order: the packing phase
 * finds a unit's heads by index. One without query rows (a regrouped group no query of a
 * cross-attention call falls in) gets no task. `packed`: K and V are already packed (a KV
 * cache), there is no packing phase, and sequences without query rows are left out — a
 * 'strided' decode step has one query in one of L groups.
 */
export function workOf(plan: Plan, packed = false): Work {
  const G = qHeadsOf(plan);
  const seqs: KernelSequence[] = [];
  const layouts: BlockLayout[] = [];
  const index = new Map<BlockLayout, number>();
  forEachSequence(plan, (s) => {
    if (s.h % G !== 0 || (packed && s.nQ === 0)) return;
    const l = groupedLayout(plan.layouts[s.layout], G, s.nQ);
    let li = index.get(l);
    if (li === undefined) index.set(l, (li = layouts.push(l) - 1));
    seqs.push({ ...s, layout: li, qHeads: G });
  });
  return { seqs, layouts, qHeads: G };
}

/**
 * Tasks are runs of query blocks, sized so that every thread gets several (8 per thread)
 * and none exceeds TASK_FLOPS, queued most expensive first for the dynamic scheduler.
 */
export function tasksOf(plan: Plan, work: Work, threads: number): Task[] {
  const { seqs, layouts } = work;
  const bs = plan.blockSize;
  let totalQB = 0;
  let totalPairs = 0;
  for (const s of seqs) {
    const nQB = Math.ceil((s.nQ * s.qHeads) / bs);
    totalQB += nQB;
    totalPairs += layouts[s.layout].rowPtr[nQB] - layouts[s.layout].rowPtr[0];
  }
  // At most TASK_FLOPS per task, so that an abort or a failed worker stops a huge call promptly.
  const flopsPerQB = (4 * bs * bs * plan.headDim * totalPairs) / Math.max(1, totalQB);
  const chunk = Math.max(1, Math.min(Math.floor(totalQB / (threads * 8)), Math.floor(TASK_FLOPS / flopsPerQB)));
  const tasks: Task[] = [];
  seqs.forEach((s, i) => {
    const layout = layouts[s.layout];
    const nQB = Math.ceil((s.nQ * s.qHeads) / bs);
    for (let qb0 = 0; qb0 < nQB; qb0 += Math.min(chunk, nQB)) {
      const qb1 = Math.min(nQB, qb0 + chunk);
      tasks.push({ seq: i, qb0, qb1, cost: layout.rowPtr[qb1] - layout.rowPtr[qb0] });
    }
  });
  // Ties (every task of 'strided', of a bidirectional layout) run in (batch, group, query
  // block, head) order: consecutive tasks read and write the same token rows (each head a
  // slice of them), so rows stay in cache and pages in the TLB; a head at a time sweeps
  // the whole tensor once per group.
  tasks.sort((a, c) => {
    const sa = seqs[a.seq], sc = seqs[c.seq];
    return c.cost - a.cost || sa.b - sc.b || sa.token0 - sc.token0 || a.qb0 - c.qb0 || sa.h - sc.h;
  });
  return tasks;
}
