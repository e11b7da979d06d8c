// A .wasm import in the workerd entry: the runtime (or its bundler) hands a compiled module.
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
