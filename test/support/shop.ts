import { closeDb } from './db';
import { ShopApi } from './http';
import { type Services, type StartOptions, startServices } from './services';

/** The running services of one suite and the REST client that talks to them. */
export interface Shop {
  readonly stack: Services;
  readonly api: ShopApi;
}

/**
 * The services for one e2e suite: started before its tests, stopped (with the test database
 * pool) after them. Call at the top level of the suite file:
 *
 *   const shop = useShop({ env: { all: { PREPARE_TIMEOUT_MS: '60000' } } });
 *   it('…', async () => { await shop.api.placeAccepted(…); await shop.stack.kill('order'); });
 */
export function useShop(options: StartOptions = {}): Shop {
  let stack: Services | undefined;
  let api: ShopApi | undefined;
  beforeAll(async () => {
    stack = await startServices(options);
    api = new ShopApi(stack);
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
    await closeDb();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the services are not running (useShop starts them in beforeAll)');
    return value;
  };
  return {
    get stack() {
      return started(stack);
    },
    get api() {
      return started(api);
    },
  };
}
