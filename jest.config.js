/** One Jest config: unit specs beside the code (*.spec.ts), integration specs against the real
 * Postgres and RabbitMQ (*.int-spec.ts), end-to-end suites (test/e2e, *.e2e-spec.ts) and
 * fault-injection suites (test/faults, *.fault-spec.ts; only with JEST_FAULTS=1, in band) and
 * cluster suites (test/cluster, *.cluster-spec.ts; only with JEST_CLUSTER=1, in band) and the
 * console's browser suite (test/browser, *.browser-spec.ts; only with JEST_BROWSER=1, in band).
 * Run through `npm test`, which starts the servers and exports their URLs. */

// ES-module-only packages that Jest (CommonJS) must have compiled.
const esmPackages = [
  '@nestjs',
  'zod',
  'file-type',
  'strtok3',
  'token-types',
  'uint8array-extras',
  '@tokenizer',
  'jose',
];

module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testMatch: [
    '**/*.spec.ts',
    '**/*.int-spec.ts',
    '**/*.e2e-spec.ts',
    '**/*.fault-spec.ts',
    '**/*.cluster-spec.ts',
    '**/*.browser-spec.ts',
  ],
  // Fault injection restarts the shared servers: it runs alone, after the rest (JEST_FAULTS=1).
  // The cluster suites need the distributed layout (a Postgres per service, a three-node broker
  // cluster): they run in a phase of their own (JEST_CLUSTER=1). The browser suite stops a
  // participant, which other suites' replicas would stand in for: a phase of its own (JEST_BROWSER=1).
  testPathIgnorePatterns: [
    '/node_modules/',
    ...(process.env.JEST_FAULTS === '1' ? [] : ['/test/faults/']),
    ...(process.env.JEST_CLUSTER === '1' ? [] : ['/test/cluster/']),
    ...(process.env.JEST_BROWSER === '1' ? [] : ['/test/browser/']),
  ],
  transform: { '^.+\\.(ts|js|mjs)$': '<rootDir>/test/jest-transform.js' },
  transformIgnorePatterns: [`/node_modules/(?!(${esmPackages.join('|')})/)`],
  moduleNameMapper: {
    '^@shop/([^/]+)$': '<rootDir>/libs/$1/src',
    '^@shop/([^/]+)/(.+)$': '<rootDir>/libs/$1/src/$2', // e.g. @shop/service-kit/instrument
  },
  testTimeout: 60_000,
  maxWorkers: 2,
};
