// WGSL programs are bundled as text (esbuild loader '.wgsl': 'text', scripts/build.mjs).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
