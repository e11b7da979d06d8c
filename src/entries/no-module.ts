// Build-time stand-in for modules a worker runtime does not have (node:*, webgpu) in
// dist/workerd.js, so that bundlers such as wrangler need no nodejs_compat to resolve them.
// The code paths that import them are never taken there (no process, no Worker).
export {};
