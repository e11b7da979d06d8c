// Whether the WebGPU suites can run here. No adapter: with SPARSE_ATTENTION_CI=1 (set by
// .ci/run) or SPARSE_ATTENTION_REQUIRE_GPU=1 the suites fail; otherwise they are skipped and
// the run ends with one line saying how to enable them (test/optional.ts). The probe runs in a
// child process: Dawn can take a process down with it.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { GPU_ENABLE, REQUIRE_GPU, recordSkip } from './optional.js';

export { REQUIRE_GPU };
export const ENABLE_HINT =
  `WebGPU tests skipped: no WebGPU adapter. To run them on the CPU: ${GPU_ENABLE} and set XDG_RUNTIME_DIR=/tmp; ` +
  'set SPARSE_ATTENTION_CI=1 (or SPARSE_ATTENTION_REQUIRE_GPU=1) to make a missing adapter a failure.';

const PROBE = `
const { create } = await import('webgpu');
const gpu = create([]);
const a = await gpu.requestAdapter();
console.log(JSON.stringify(a ? { ok: true, info: a.info.description || a.info.vendor, workgroupBytes: a.limits.maxComputeWorkgroupStorageSize } : { ok: false }));
`;

let probed: { ok: boolean; info?: string; workgroupBytes?: number; error?: string } | undefined;

/** Probes for an adapter once per test file; without one (and not required) records the skip. */
export function probeAdapter(): { ok: boolean; info?: string; workgroupBytes?: number; error?: string } {
  if (probed) return probed;
  try {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE], {
      env: { XDG_RUNTIME_DIR: '/tmp', ...process.env },
      timeout: 60_000,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    probed = JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    probed = { ok: false, error: (e as Error).message.split('\n')[0] };
  }
  if (!probed!.ok && !REQUIRE_GPU) {
    recordSkip({ what: 'WebGPU suites', why: `no WebGPU adapter${probed!.error ? `: ${probed!.error}` : ''}`, enable: GPU_ENABLE });
  }
  return probed!;
}

/**
 * Hang guard for the GPU tests and hooks (vi.setConfig in each GPU file). lavapipe compiles a
 * pipeline at its first dispatch: 5–35 CPU-seconds each when Mesa's shader cache does not
 * have it (a fresh machine, or any change to the shader text), and a test may compile two or
 * three; on a machine loaded 3× or more each takes several times longer (a 64×64 Q_TILE
 * variant took 120 s at load 16). Ten minutes only catches a hang.
 */
export const GPU_TIMEOUT = 600_000;

/**
 * Keeps the library's shared GPU device alive for the whole test file (call at the top level
 * of the file): one idle instance from beforeAll to afterAll. The library destroys its device
 * when the last instance using it is disposed; a test that creates and disposes its own
 * instances would otherwise request a new device each time and rebuild every pipeline on it
 * (a lookup in Mesa's shader cache at best, a full compile without one). Instances given
 * their own `device` option are not affected.
 */
export function holdSharedDevice(enabled: boolean): void {
  let keeper: SparseAttention | null = null;
  beforeAll(async () => {
    if (!enabled) return;
    keeper = new SparseAttention(1, 'all', undefined, 16, { backend: 'webgpu' });
    await keeper.gpuDevice();
  }, GPU_TIMEOUT);
  afterAll(() => keeper?.dispose());
}
