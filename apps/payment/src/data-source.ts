import { payment } from './service';

/** What the TypeORM CLI loads (migration:generate|run|revert): as the role that owns the schema. */
export default payment.cliDataSource();
