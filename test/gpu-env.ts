// Whether the WebGPU suite can run here. No adapter: with SPARSE_ATTENTION_REQUIRE_GPU=1
// (set by .ci/run) the suite fails; otherwise it is skipped with one line saying how to
// enable it. The probe runs in a child process: Dawn can take a process down with it.
import { execFileSync } from 'node:child_process';

export const REQUIRE_GPU = process.env.SPARSE_ATTENTION_REQUIRE_GPU === '1';
export const ENABLE_HINT =
  'WebGPU tests skipped: no WebGPU adapter. To run them on the CPU: install mesa-vulkan-drivers from ' +
  'bookworm-backports (apt-get install -t bookworm-backports mesa-vulkan-drivers) and set XDG_RUNTIME_DIR=/tmp; ' +
  'set SPARSE_ATTENTION_REQUIRE_GPU=1 to make a missing adapter a failure.';

const PROBE = `
const { create } = await import('webgpu');
const gpu = create([]);
const a = await gpu.requestAdapter();
console.log(JSON.stringify(a ? { ok: true, info: a.info.description || a.info.vendor, workgroupBytes: a.limits.maxComputeWorkgroupStorageSize } : { ok: false }));
`;

export function probeAdapter(): { ok: boolean; info?: string; workgroupBytes?: number; error?: string } {
  try {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', PROBE], {
      env: { XDG_RUNTIME_DIR: '/tmp', ...process.env },
      timeout: 60_000,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    return { ok: false, error: (e as Error).message.split('\n')[0] };
  }
}
