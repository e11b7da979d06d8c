// onnxruntime-node from bench/peers (installed by `node scripts/setup-bench.mjs`: 288 MB, kept
// out of the project's own dependencies), or null where it is not installed.
import { createRequire } from 'node:module';

export function loadOrtNode() {
  try {
    return createRequire(new URL('../../../bench/peers/package.json', import.meta.url))('onnxruntime-node');
  } catch {
    return null;
  }
}
