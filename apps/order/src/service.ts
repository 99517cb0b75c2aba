import { defineService } from '@shop/service-kit';
import { OrderConfig } from './config';
import { orderMigrations } from './migrations';

/** The order service as the kit runs it: its settings (validated here), database and entry points. */
export const order = defineService({ name: 'order', config: OrderConfig, migrations: orderMigrations });
