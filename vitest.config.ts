import { defineConfig } from 'vitest/config';

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
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
