// Small shared rules about block geometry, spelled once: which modes are bands (their
// result does not depend on the block size, so each backend picks its own), how many
// sequence groups a plan has ('strided' regroups tokens by i % L), and a stable id per
// layout list (layout lists are cached per geometry, so ids repeat across calls and key
// the backends' table caches).
import type { AttnMode } from './config.js';

/** 'all', 'local' and 'strided': a band per sequence; any block size gives the same result. */
export function isBandMode(mode: AttnMode): boolean {
  return mode === 'all' || mode === 'local' || mode === 'strided';
}

/** Sequence groups per (batch, head): L for regrouped 'strided' (at most nCtx), else 1. */
export function sequenceGroups(plan: { readonly regroup: number; readonly nCtx: number }): number {
  return plan.regroup > 0 ? Math.min(plan.regroup, plan.nCtx) : 1;
}

const layoutIds = new WeakMap<object, number>();
let nextLayoutId = 1;

/** A stable number for a geometry's layout list (identity, not contents). */
export function layoutId(layouts: object): number {
  let id = layoutIds.get(layouts);
  if (id === undefined) layoutIds.set(layouts, (id = nextLayoutId++));
  return id;
}
