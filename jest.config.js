/** One Jest config: unit specs beside the code (*.spec.ts), integration specs against the real
 * Postgres and RabbitMQ (*.int-spec.ts) and end-to-end suites under test/ (*.e2e-spec.ts).
 * Run through `npm test`, which starts the servers and exports their URLs. */
const swc = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};

module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.int-spec.ts', '**/*.e2e-spec.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  moduleNameMapper: { '^@shop/(.*)$': '<rootDir>/libs/$1/src' },
  testTimeout: 60_000,
  maxWorkers: 2,
};
