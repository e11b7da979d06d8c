// The browser smoke page's script: loaded as is by index.html (the package name mapped to
// dist/ by an import map) and bundled by esbuild for the browser (conditions pick
// dist/browser.js and dist/core.browser.js) in test/runtimes/browser.test.ts.
// Query: threads=<n> (CPU workers); entry=core (the core entry + init({ url }) instead of
// the entry with embedded kernels). The result lands in window.smokeResult (or smokeError).
import { runSmoke } from '../fixtures/cases.mjs';

const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') ?? 1);
try {
  let lib;
  if (params.get('entry') === 'core') {
    lib = await import('sparse-attention/core');
    await lib.init([
      { build: 'relaxed', url: '/dist/bsattn.relaxed.wasm' },
      { build: 'simd', url: '/dist/bsattn.simd.wasm' },
    ]);
  } else {
    lib = await import('sparse-attention');
  }
  const report = await runSmoke(lib, { backend: 'wasm', threads });
  window.smokeResult = { userAgent: navigator.userAgent, crossOriginIsolated: self.crossOriginIsolated, ...report };
} catch (e) {
  window.smokeError = String(e?.stack ?? e);
}
