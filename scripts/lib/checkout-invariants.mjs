// The checkout's invariants over the coordinator and EVERY participant, for the test support
// (test/support/invariants.ts) and the benchmark (scripts/lib/bench/invariants.mjs). Two kinds:
//
//  - generic, read from the two-phase-commit kit's own tables (the coordinator's
//    `tpc_transactions`, each participant's `tpc_participant_transactions`), so a new participant
//    is checked without a line of its own: atomicity and agreement of the states, and, once
//    quiescent, nothing undecided or in doubt and every decision acknowledged;
//  - each service's own, as SQL in its app folder (`apps/<name>/checks/`, see `serviceChecks`):
//    conservation of its resources (stock, money), and what it did against what the order asked.
//
// No dependency but node (and config.mjs): the bench runs it as is, Jest through its transform.
// The caller opens the snapshot (one REPEATABLE READ transaction) and says which transactions are
// in scope.
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, SERVICE_NAME, dbRole } from './config.mjs';

/** A service's schema (its tables, the kit's included), named like its database role. */
export function schemaOf(name) {
  if (!SERVICE_NAME.test(name)) throw new Error(`not a service name: ${JSON.stringify(name)}`);
  return dbRole(name);
}

/** The generic checks, by name (each violation names the one it breaks). */
export const GENERIC_CHECKS = {
  committed: 'the coordinator COMMITTED ⇒ no participant refused or aborted; at rest every participant COMMITTED',
  notCommitted: 'a participant COMMITTED ⇒ the coordinator COMMITTED (it knows the transaction)',
  decided: 'at rest: every transaction decided (none PREPARING at the coordinator)',
  inDoubt: 'at rest: no participant transaction left PREPARED (in doubt)',
  acknowledged: 'at rest: every decision acknowledged by every participant',
};

const PARAMETERS = ['transactions', 'resources', 'quiescent'];

/**
 * A service's own checks: `apps/<name>/checks/violations.sql` (required for any check of its own)
 * and `apps/<name>/checks/resources.sql` (optional). Each file is one SELECT.
 *
 *  - resources.sql: `SELECT transaction_id, <key> AS resource FROM …`, every (transaction,
 *    resource) pair the service holds, e.g. (transaction, SKU) of each reservation. It scopes the
 *    checks to the resources the transactions in scope touched, and brings the other
 *    transactions on those resources into scope (a commit the coordinator never asked for).
 *  - violations.sql: rows `(kind, message)`, kind 'safety' (must hold at every instant) or
 *    'liveness' (only once quiescent), one per broken invariant. It may use three parameters by
 *    name: `$transactions` (text[] of transaction ids in scope), `$resources` (text[] of the
 *    resources they touched, per resources.sql) and `$quiescent` (boolean); the first two are
 *    NULL when everything is checked.
 *
 * Null for a service without a violations.sql: the generic checks still cover it.
 */
export function serviceChecks(name, root = ROOT) {
  const dir = path.join(root, 'apps', name, 'checks');
  const read = (file) => {
    const full = path.join(dir, file);
    return fs.existsSync(full) ? fs.readFileSync(full, 'utf8').trim().replace(/;$/, '') : null;
  };
  const violations = read('violations.sql');
  if (!violations) return null;
  return {
    name,
    file: path.relative(root, path.join(dir, 'violations.sql')),
    violations,
    resources: read('resources.sql'),
  };
}

/** `$transactions`, `$resources`, `$quiescent` → `$1…` in order of first use, and their values. */
function bind(text, values) {
  const used = [];
  const sql = text.replace(/\$([a-z]+)\b/g, (token, name) => {
    if (!PARAMETERS.includes(name)) throw new Error(`unknown parameter ${token} in a checks file`);
    if (!used.includes(name)) used.push(name);
    return `$${used.indexOf(name) + 1}`;
  });
  return { sql, params: used.map((name) => values[name]) };
}

/** The resources the transactions in scope touched, and every transaction on them. */
async function touched(client, checks, transactionIds) {
  const { rows } = await client.query(
    `WITH touches AS (${checks.resources}),
          scoped AS (SELECT DISTINCT resource::text AS resource FROM touches WHERE transaction_id::text = ANY($1::text[]))
     SELECT ARRAY(SELECT resource FROM scoped) AS resources,
            ARRAY(SELECT DISTINCT transaction_id::text FROM touches
                   WHERE resource::text IN (SELECT resource FROM scoped)) AS transactions`,
    [transactionIds],
  );
  return rows[0];
}

/**
 * Every violation among the transactions in scope (`transactionIds`; null = everything in the
 * database), as `{ kind: 'safety' | 'liveness', check, message }`. `quiescent` adds the liveness
 * checks. `coordinator` and `participants` are service names (@shop/contracts PARTICIPANTS, or
 * config.mjs PARTICIPANT_NAMES in the scripts); a participant's own checks are read from its app folder.
 */
export async function findViolations(client, { coordinator, participants, transactionIds = null, quiescent = false }) {
  const services = [coordinator, ...participants].map((name) => ({ name, checks: serviceChecks(name) }));
  // Scope: the given transactions, and those on the same resources in any service.
  let scope = transactionIds === null ? null : [...new Set(transactionIds)];
  const resources = new Map();
  if (scope !== null) {
    const related = new Set(scope);
    for (const { name, checks } of services) {
      if (!checks?.resources) continue;
      const found = await touched(client, checks, scope);
      resources.set(name, found.resources);
      for (const id of found.transactions) related.add(id);
    }
    scope = [...related];
  }

  const out = [];
  out.push(...(await genericViolations(client, coordinator, participants, scope, quiescent)));
  for (const { name, checks } of services) {
    if (!checks) continue;
    const values = { transactions: scope, resources: scope === null ? null : (resources.get(name) ?? []), quiescent };
    const { sql, params } = bind(checks.violations, values);
    const { rows } = await client.query(sql, params);
    for (const r of rows) out.push({ kind: r.kind, check: `${name}: ${checks.file}`, message: r.message });
  }
  return out;
}

/** The kit's tables of the coordinator and of every participant, transaction by transaction. */
async function genericViolations(client, coordinator, participants, scope, quiescent) {
  const inScope = (column) => `($1::text[] IS NULL OR ${column}::text = ANY($1::text[]))`;
  const { rows: decisions } = await client.query(
    `SELECT id::text AS id, state, completed_at IS NOT NULL AS acked
       FROM ${schemaOf(coordinator)}.tpc_transactions WHERE ${inScope('id')}`,
    [scope],
  );
  const transactions = new Map(decisions.map((d) => [d.id, { decision: d, states: {} }]));
  for (const p of participants) {
    const { rows } = await client.query(
      `SELECT transaction_id::text AS id, state FROM ${schemaOf(p)}.tpc_participant_transactions
        WHERE ${inScope('transaction_id')}`,
      [scope],
    );
    for (const r of rows) {
      if (!transactions.has(r.id)) transactions.set(r.id, { decision: null, states: {} });
      transactions.get(r.id).states[p] = r.state;
    }
  }

  const out = [];
  for (const [id, { decision, states }] of transactions) {
    const add = (kind, check, text) =>
      out.push({
        kind,
        check: GENERIC_CHECKS[check],
        message: `transaction ${id}: ${text} ${describe(decision, participants, states)}`,
      });
    const inState = (state) => participants.filter((p) => states[p] === state);
    const refused = participants.filter((p) => states[p] === 'REFUSED' || states[p] === 'ABORTED');
    const committed = inState('COMMITTED');
    if (decision?.state === 'COMMITTED') {
      if (refused.length) add('safety', 'committed', `COMMITTED but refused or aborted by ${refused.join(', ')}`);
      if (quiescent && committed.length !== participants.length) {
        const missing = participants.filter((p) => !committed.includes(p));
        add('safety', 'committed', `COMMITTED but not committed by ${missing.join(', ')}`);
      }
    } else if (committed.length) {
      const coordinatorSays = decision ? decision.state : 'no such transaction at the coordinator';
      add('safety', 'notCommitted', `committed by ${committed.join(', ')} but ${coordinatorSays}`);
    }
    if (!quiescent) continue;
    if (decision?.state === 'PREPARING') add('liveness', 'decided', 'still undecided');
    const prepared = inState('PREPARED');
    if (prepared.length) add('liveness', 'inDoubt', `still PREPARED in ${prepared.join(', ')}`);
    if (decision && decision.state !== 'PREPARING' && !decision.acked)
      add('liveness', 'acknowledged', 'decided but not acknowledged by all');
  }
  return out;
}

function describe(decision, participants, states) {
  const each = participants.map((p) => `${p} ${states[p] ?? 'none'}`);
  return `(coordinator ${decision?.state ?? 'none'}, ${each.join(', ')})`;
}
