// The library's test-only hooks (src/testing.ts): fault injection, live counters and the
// engines alive, of the same bundle as the SparseAttention class given (dist/index.js's by
// default). Not exported by any entry; each bundle registers them on a global slot.
import { SparseAttention } from '../dist/index.js';
import type { TestingHooks } from '../src/testing.js';

export function testingHooks(cls: unknown = SparseAttention): TestingHooks {
  const slot = (globalThis as Record<symbol, Map<unknown, TestingHooks> | undefined>)[Symbol.for('sparse-attention.testing')];
  const hooks = slot?.get(cls);
  if (!hooks) throw new Error('test/internal.ts: no test hooks registered for this SparseAttention class (is dist/ built from src/testing.ts?)');
  return hooks;
}

export const __testing = testingHooks();
