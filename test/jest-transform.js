// Jest runs CommonJS; NestJS 12 ships ES modules only. This transformer compiles both our
// TypeScript and those ES modules to CommonJS with SWC, rewriting `import.meta.url` (which has
// no CommonJS form) to the file's URL. Node 20.19+ and the built app load the ES modules natively.
const { createTransformer } = require('@swc/jest');

const swc = createTransformer({
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
});

const IMPORT_META_URL = /\bimport\.meta\.url\b/g;
const FILE_URL = "require('node:url').pathToFileURL(__filename).href";
// `const require = createRequire(import.meta.url)`: CommonJS already has a module-relative require.
const LOCAL_REQUIRE = /\bconst require = createRequire\([^)]*\);?/g;

function rewrite(source) {
  if (!source.includes('import.meta')) return source;
  return source.replace(LOCAL_REQUIRE, '').replace(IMPORT_META_URL, FILE_URL);
}

module.exports = {
  process(source, path, options) {
    return swc.process(rewrite(source), path, options);
  },
  processAsync(source, path, options) {
    return swc.processAsync(rewrite(source), path, options);
  },
  getCacheKey(source, path, options) {
    return swc.getCacheKey(rewrite(source), path, options) + ':import-meta-2';
  },
};
