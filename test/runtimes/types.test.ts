// Types: a consumer file importing every entry by the package's own name type-checks with
// moduleResolution NodeNext (so the .d.ts resolve through package.json "exports"), and the
// shipped .d.ts themselves check (no skipLibCheck).
import { describe, expect, it } from 'vitest';
import { ROOT, runCommand } from './harness.js';

describe('types', () => {
  it("'sparse-attention', '/core' and '/workerd' resolve to dist/types and type-check", async () => {
    const r = await runCommand(process.execPath, [
      `${ROOT}node_modules/typescript/bin/tsc`, '-p', `${ROOT}test/runtimes/types/tsconfig.json`, '--traceResolution',
    ]);
    const resolved = [...r.stdout.matchAll(/Module name '(sparse-attention[^']*)' was successfully resolved to '([^']+)'/g)]
      .map((m) => [m[1], m[2].slice(ROOT.length)]);
    const errors = r.stdout.split('\n').filter((l) => l.includes('error TS')).join('\n');
    expect(errors).toBe('');
    expect(r.code).toBe(0);
    expect(Object.fromEntries(resolved)).toEqual({
      'sparse-attention': 'dist/types/index.d.ts',
      'sparse-attention/core': 'dist/types/index.d.ts',
      'sparse-attention/workerd': 'dist/types/index.d.ts',
    });
  });
});
