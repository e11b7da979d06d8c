// Build-time stand-in for modules that browsers and worker runtimes do not have (node:*,
// webgpu) in dist/browser.js and dist/workerd.js, so that bundlers (webpack, esbuild for
// the browser, wrangler without nodejs_compat) need not resolve them. The code paths
// that import them are taken only in Node, Bun and Deno.
export {};
