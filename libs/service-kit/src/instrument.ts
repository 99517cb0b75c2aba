import { instrument } from './tracing';

/** Imported first by each app's main.ts, before Nest, express and pg are loaded: see tracing.ts. */
instrument();
