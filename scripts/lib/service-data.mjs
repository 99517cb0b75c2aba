// The services' data hooks (apps/<name>/data.ts; see libs/service-kit/src/service-data.ts), run
// as Node runs them: the demo seed and the benchmark ask each service what a shop needs of it.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, SERVICES } from './config.mjs';

/** The file of a service's data hook (it may have none: then it needs no data). */
export const dataHookFile = (name) => path.join(ROOT, 'apps', name, 'data.ts');

/**
 * What each service needs for `shop`, as admin requests: [{ service, method, path, body }], the
 * services in services.json order (the catalog first), each one's requests in the hook's order.
 */
export async function adminRequestsFor(shop, services = SERVICES) {
  const requests = [];
  for (const { name } of services) {
    const file = dataHookFile(name);
    if (!fs.existsSync(file)) continue;
    const { data } = await import(pathToFileURL(file).href);
    if (typeof data !== 'function') throw new Error(`${path.relative(ROOT, file)} exports no \`data\` function`);
    for (const request of data(shop)) requests.push({ service: name, ...request });
  }
  return requests;
}
