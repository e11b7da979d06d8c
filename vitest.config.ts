import { availableParallelism } from 'node:os';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/**
 * The GPU suites first, the one compiling the most pipelines first: on lavapipe each new
 * pipeline is compiled (5–35 CPU-seconds on a fresh machine) at its first dispatch, so these
 * files are the longest by far, and while one compiles on one core the other core runs the
 * next GPU file and then the CPU suites. Without recorded durations (a fresh clone) vitest's
 * own order is by file size, which starts them late.
 */
const GPU_FIRST = ['variants-subgroups', 'webgpu', 'variants', 'webgpu-inference', 'webgpu-f16', 'webgpu-modifiers', 'webgpu-features', 'webgpu-property', 'webgpu-reliability', 'webgpu-trust'].map((n) => `/test/${n}.test.ts`);

class GpuFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = GPU_FIRST.findIndex((g) => f.moduleId.endsWith(g));
      return i < 0 ? GPU_FIRST.length : i;
    };
    const sorted = await super.sort(files);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

export default defineConfig({
  // The shaders are imported as text (as scripts/build.mjs does), for unit tests on src/.
  plugins: [{ name: 'wgsl-text', transform: (code, id) => (id.endsWith('.wgsl') ? { code: `export default ${JSON.stringify(code)};`, map: null } : undefined) }],
  test: {
    include: ['test/**/*.test.ts'],
    // Optional suites (WebGPU without a Vulkan driver, the browser without chromium) record
    // their skips; the run ends with one line naming them and how to enable them.
    globalSetup: ['test/global-setup.ts'],
    // forks: a crash inside a native GPU addon takes one child process, not the runner.
    pool: 'forks',
    // One test file per core (vitest's default leaves one core to the runner: on 2 cores,
    // one file at a time); the runner itself mostly waits.
    maxWorkers: Math.max(2, availableParallelism()),
    sequence: { sequencer: GpuFirstSequencer },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // lavapipe (the software Vulkan the GPU suites run on without a GPU) at 128-bit vectors
    // instead of its AVX2 256: LLVM compiles each pipeline 2–3.5× faster (q16×16 tile 4.6 ->
    // 2.0 s, flash-decoding 8.0 -> 2.3 s, measured on the 2-core EPYC) and the small test
    // shapes run about 7% slower. Compiling is most of a fresh machine's GPU test time; Mesa
    // reads the variable when the driver loads, in each test process. The results are the
    // same (checked against the CPU path, with caches written at either width). Its subgroups
    // are then 4 wide, too narrow for the kernels' 8-lane shuffles: the suites run the plain
    // kernels, and test/variants-subgroups.test.ts sets 256 bits for itself.
    env: { LP_NATIVE_VECTOR_WIDTH: process.env.LP_NATIVE_VECTOR_WIDTH ?? '128' },
  },
});
