// The run's results as a console summary, a JSON file, a short Markdown summary, and an SVG chart
// of throughput and decision latency over time (hand-written SVG: no dependencies).
import fs from 'node:fs';
import path from 'node:path';
import { color } from '../util.mjs';

const num = (v, digits = 0) =>
  v == null || !Number.isFinite(v)
    ? 'n/a'
    : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const msf = (v) => (v == null ? 'n/a' : v < 10 ? num(v, 1) : num(v));
const pct = (v, digits = 0) => (v == null || !Number.isFinite(v) ? 'n/a' : `${num(v * 100, digits)}%`);
const perS = (v) => (v == null ? 'n/a' : `${num(v, Number.isInteger(v) ? 0 : 1)}/s`);
// Statement execution times are fractions of a millisecond.
const execMs = (v) => (v == null ? 'n/a' : v < 1 ? num(v, 3) : v < 10 ? num(v, 2) : num(v, 1));
// A role's service (order_svc → order), for short labels.
const svcOf = (role) => role.replace(/_svc$/, '');
const lat3 = (p) => `p50 ${msf(p.p50)} · p99 ${msf(p.p99)} · max ${msf(p.max)} ms`;
const lat = (p) => `p50 ${msf(p.p50)} · p95 ${msf(p.p95)} · p99 ${msf(p.p99)} · max ${msf(p.max)} ms`;

function loadLine(r) {
  const l = r.load;
  const over = r.overload ? ` (${r.overload.factor} × the sustainable ${perS(r.sustainable?.perSecond)})` : '';
  const how = l.mode === 'open' ? `open loop, ${perS(l.rate)} offered${over}` : `closed loop, ${l.concurrency} clients`;
  const howLong = l.count ? `${num(l.count)} orders` : `${l.durationS} s`;
  return `${r.mix} mix, ${how}, ${howLong}${l.warmupS ? ` (after ${l.warmupS} s warm-up)` : ''}`;
}

/** Which servers the run used: one RabbitMQ node or the three-node cluster, and one Postgres. */
function layoutLine(r) {
  const nodes = r.target.brokerNodes?.length ?? 1;
  if (!r.target.layout) return null;
  const broker = r.target.layout.brokerCluster
    ? `RabbitMQ cluster of ${nodes} nodes (quorum queues replicated on each; probes and ceiling on node 1)`
    : 'one RabbitMQ node';
  return `${broker}; one Postgres, three schemas`;
}

const codeLine = (c) =>
  `commit ${c.commit ?? 'unknown'}` +
  (c.uncommittedInAppsAndLibs ? ` + ${c.uncommittedInAppsAndLibs} uncommitted file(s) in apps/ and libs/` : '') +
  (c.distBuiltAt ? `, dist/ built ${c.distBuiltAt}` : '');

/** Where the sustainable rate came from: --sustainable, or what the calibration decided. */
function sustainableText(s) {
  if (s.source !== 'calibrated') return `${perS(s.perSecond)}, given (--sustainable)`;
  const c = s.calibration;
  return (
    `${perS(s.perSecond)}, calibrated: ${c.concurrency} clients in a closed loop for ${c.durationS} s decided a steady ` +
    `${perS(c.steadyDecidedPerSecond)} (${num(c.decided)} decided of ${num(c.sent)} sent, ${num(c.shed)} shed)`
  );
}

/** The POSTs' answers: accepted (2xx), shed (503) and failed (any other status), with shares. */
function placedText(r) {
  const c = r.counts;
  const shares = c.shed > 0 || c.failed > 0;
  const statuses = Object.entries(c.httpErrors)
    .map(([s, n]) => `${s}: ${n}`)
    .join(', ');
  return (
    `${num(c.accepted)} accepted${shares ? ` (${pct(c.acceptedShare, 1)})` : ''} of ${num(c.sent)} sent` +
    (c.shed ? `, ${num(c.shed)} shed with 503 (${pct(c.shedShare, 1)})` : '') +
    (c.failed ? `, ${num(c.failed)} failed (${statuses})` : '') +
    ` → ${num(r.rates.placedPerSecond, 1)}/s accepted`
  );
}

/** Goodput: decided while the load lasted, against the sustainable rate when there is one. */
function goodputText(r) {
  const x = r.rates;
  const of = r.sustainable
    ? `, ${pct(x.goodputShareOfSustainable)} of the sustainable ${perS(r.sustainable.perSecond)}`
    : '';
  return (
    `${num(x.goodputPerSecond, 1)}/s decided while sending (${num(x.loadWindowS, 1)} s)${of}; ` +
    `CONFIRMED ${num(x.goodputConfirmedPerSecond, 1)}/s`
  );
}

/** HTTP answer times: the accepted POSTs, and the shed ones apart (they should be quick). */
function answerText(r) {
  const l = r.latency;
  if (!r.overload && !l.httpShedMs?.n) return `p50 ${msf(l.httpAcceptedMs.p50)} · p99 ${msf(l.httpAcceptedMs.p99)} ms`;
  const retry = r.counts.retryAfterS;
  return (
    `accepted ${lat3(l.httpAcceptedMs)}; shed (503) ${lat3(l.httpShedMs)}` +
    (retry?.n ? `, Retry-After p50 ${num(retry.p50, 1)} s (max ${num(retry.max, 1)})` : '')
  );
}

/**
 * The lines both the console and the Markdown summary show, as [label, text, strong] rows;
 * with --overload the figures about it are strong (bold).
 */
function headline(r) {
  const c = r.counts;
  const over = Boolean(r.overload);
  const cancelled = Object.entries(c.cancelledBy)
    .map(([why, n]) => `${why} ${num(n)}`)
    .join(', ');
  const layout = layoutLine(r);
  const rows = [
    ['load', loadLine(r)],
    ...(layout ? [['layout', layout]] : []),
    ...(r.sustainable ? [['sustainable', sustainableText(r.sustainable), over]] : []),
    ['placed', placedText(r), over],
    [
      'decided',
      `${num(c.decided)}: CONFIRMED ${num(c.confirmed)}, CANCELLED ${num(c.cancelled)}${cancelled ? ` (${cancelled})` : ''}` +
        (c.pending ? `, STILL PENDING ${num(c.pending)}` : '') +
        ` → ${num(r.rates.decidedPerSecond, 1)}/s first send → last decision (steady ${num(r.rates.steadyDecidedPerSecond)}/s)`,
    ],
  ];
  if (over || c.timeouts)
    rows.push([
      'TIMEOUT',
      `${num(c.timeouts)} orders CANCELLED because a vote missed the prepare deadline (${pct(c.accepted ? c.timeouts / c.accepted : null, 1)} of the accepted)`,
      over,
    ]);
  rows.push(['goodput', goodputText(r), over]);
  rows.push([
    'drain',
    r.rates.drainS == null
      ? 'n/a (nothing decided)'
      : `${num(r.rates.drainS, 1)} s from the end of sending to the last decision`,
    over,
  ]);
  if (r.rates.keepsUp) rows.push(['keeps up', r.rates.keepsUp.verdict ? 'yes' : `NO — ${r.rates.keepsUp.why}`]);
  rows.push(['decision', `${lat(r.latency.decisionMs)}   (POST sent → orders.decided_at)`]);
  rows.push(['HTTP answer', answerText(r), over]);
  if (r.latency.ackMs?.n)
    rows.push(['acks in', `p50 ${msf(r.latency.ackMs.p50)} · p99 ${msf(r.latency.ackMs.p99)} ms after the decision`]);
  return rows;
}

function costRows(r) {
  const k = r.cost;
  const rows = [];
  if (k.commitsPerCheckout != null)
    rows.push([
      'Postgres',
      `${num(k.commitsPerCheckout, 1)} commits per checkout (${num(k.commitsPerCheckoutNet, 1)} net of ${num(k.idleCommitsPerSecond, 1)}/s at idle), ` +
        (k.writingTransactionsPerCheckout != null
          ? `of which ${num(k.writingTransactionsPerCheckout, 1)} wrote; `
          : '') +
        `${num(k.rowsWrittenPerCheckout, 1)} rows written` +
        (k.walBytesPerCheckout != null
          ? `, ${num(k.walBytesPerCheckout / 1024, 1)} kB WAL, ${num(k.walSyncsPerCheckout, 2)} WAL fsyncs`
          : '') +
        (k.deadlocks != null ? `; ${k.deadlocks} deadlock(s), ${k.rollbacks} rollback(s) in the run` : ''),
    ]);
  const st = k.statements;
  if (st)
    rows.push([
      'Postgres statements',
      `${num(st.perCheckout, 1)} per checkout (` +
        Object.entries(st.byRolePerCheckout)
          .map(([role, n]) => `${svcOf(role)} ${num(n, 1)}`)
          .join(' · ') +
        ')' +
        (st.perCheckoutNet != null
          ? `, ${num(st.perCheckoutNet, 1)} net of ${num(st.idlePerSecond, 1)}/s at idle`
          : '') +
        `; ${execMs(st.meanExecMs)} ms exec each`,
    ]);
  if (k.brokerPublishedPerCheckout != null)
    rows.push([
      'RabbitMQ',
      `${num(k.brokerPublishedPerCheckout, 2)} messages published, ${num(k.brokerDeliveredPerCheckout, 2)} delivered per checkout` +
        (k.brokerSettled ? '' : ' (management counters had not caught up: a lower bound)'),
    ]);
  if (k.outboxMessagesPerCheckout != null)
    rows.push(['outboxes', `${num(k.outboxMessagesPerCheckout, 2)} messages written per checkout`]);
  // Without the services' pids (services given by URL) there is no CPU profile to show.
  if (r.cpu?.perCheckoutMs && r.target.kind === 'own') {
    const nodes = r.cpu.rabbitmqNodesPerCheckoutMs;
    const parts = Object.entries(r.cpu.perCheckoutMs).map(
      ([n, v]) =>
        `${n} ${msf(v)}` + (n === 'rabbitmq' && nodes?.length > 1 ? ` (nodes ${nodes.map(msf).join(' + ')})` : ''),
    );
    rows.push(['CPU ms/checkout', `${parts.join(' · ')} = ${msf(r.cpu.totalPerCheckoutMs)} ms`]);
    rows.push([
      'CPU in use',
      `${num(r.cpu.machineBusyCores, 2)} of ${r.machine.nproc} cores busy (${num(r.cpu.otherCores, 2)} by other processes on the machine)`,
    ]);
  }
  return rows;
}

function ceilingRows(r) {
  const c = r.ceiling;
  if (!c) return [];
  const rows = [];
  if (c.postgres?.commitsPerSecond)
    rows.push([
      'Postgres',
      `${num(c.postgres.commitsPerSecond)} commits/s (pgbench, ${c.postgres.clients} clients, 1 insert + 1 update) ÷ ${num(r.cost.commitsPerCheckout, 1)} commits = ` +
        `${num(c.pgCheckoutsPerSecond)} checkouts/s` +
        (c.pgCheckoutsPerSecondByWrites
          ? ` (÷ ${num(r.cost.writingTransactionsPerCheckout, 1)} writing ones = ${num(c.pgCheckoutsPerSecondByWrites)}/s); ` +
            `this run: ${pct(c.fractionOfPg)} (${pct(c.fractionOfPgByWrites)}) of it`
          : `; this run: ${pct(c.fractionOfPg)} of it`),
    ]);
  if (c.broker?.messagesPerSecond)
    rows.push([
      'RabbitMQ',
      `${num(c.broker.messagesPerSecond)} msg/s (publish + confirm + consume, quorum queue${
        r.target.brokerNodes?.length > 1 ? ` on ${r.target.brokerNodes.length} nodes` : ''
      }) ÷ ${num(r.cost.brokerPublishedPerCheckout, 1)} = ` +
        `${num(c.brokerCheckoutsPerSecond)} checkouts/s; this run: ${pct(c.fractionOfBroker)} of it`,
    ]);
  if (c.cpuCheckoutsPerSecond)
    rows.push([
      'CPU',
      `${r.machine.nproc} cores ÷ ${msf(r.cpu.totalPerCheckoutMs)} CPU ms per checkout = ${num(c.cpuCheckoutsPerSecond)} checkouts/s; this run: ${pct(c.fractionOfCpu)} of it`,
    ]);
  for (const e of c.errors ?? []) rows.push(['not measured', e]);
  return rows;
}

function detailRows(r) {
  const rows = [];
  if (r.breakdown?.segments?.length) {
    rows.push([
      'decision path',
      r.breakdown.segments.map((s) => `${s.name} ${msf(s.p50)}`).join(' → ') +
        ` ms (medians; p99 ${r.breakdown.segments.map((s) => msf(s.p99)).join(' / ')})`,
    ]);
  }
  if (r.outbox)
    rows.push([
      'outbox lag',
      Object.entries(r.outbox)
        .map(
          ([svc, o]) => `${svc} p50 ${msf(o.lagMs.p50)} / p99 ${msf(o.lagMs.p99)} ms, ${num(o.avgBatch, 1)} per batch`,
        )
        .join(' · '),
    ]);
  const act = r.postgresActivity;
  if (act?.samples) {
    rows.push([
      'pg connections',
      Object.entries(act.roles)
        .map(([role, v]) => `${role} ${num(v.avgActive + v.avgIdleInTransaction, 1)} busy (max ${v.maxBusy})`)
        .join(' · '),
    ]);
    rows.push([
      'pg busy time',
      act.waits
        .slice(0, 6)
        .map((w) => `${w.what} ${pct(w.share)}`)
        .join(' · '),
    ]);
  }
  if (r.queues && Object.keys(r.queues).length)
    rows.push([
      'queue depth max',
      Object.entries(r.queues)
        .filter(([name]) => !name.includes('dead-letter') && !/\.retry(\.[0-9]+ms)?$/.test(name))
        .map(([q, n]) => `${q} ${num(n)}`)
        .join(' · '),
    ]);
  if (r.memory && Object.keys(r.memory).length)
    rows.push([
      'peak RSS',
      Object.entries(r.memory)
        .map(([svc, m]) => `${svc} ${num(m.peakMb)} MB`)
        .join(' · '),
    ]);
  for (const note of r.notes) rows.push(['note', note]);
  return rows;
}

export function printSummary(r) {
  const b = (s) => color('bold', s);
  const print = (title, rows) => {
    if (!rows.length) return;
    console.log(`\n${b(title)}`);
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v, strong] of rows) console.log(`  ${strong ? b(k.padEnd(w)) : k.padEnd(w)}  ${v}`);
  };
  print(
    `Checkout benchmark${overloadTitle(r)} — ${r.target.kind === 'own' ? 'own stack, database shop_bench' : 'external services'}`,
    headline(r),
  );
  print('Cost of one checkout', costRows(r));
  print('Ceiling of this machine (baseline)', ceilingRows(r));
  print('Where the time goes', detailRows(r));
  const inv = r.invariants;
  console.log(`\n${b('Invariants')}`);
  for (const c of inv.checks) {
    console.log(`  ${c.ok ? color('green', 'ok  ') : color('red', 'FAIL')}  ${c.name}${c.ok ? '' : ` (${c.count})`}`);
    for (const e of c.examples) console.log(`          ${e}`);
  }
  console.log(
    `\n  machine: ${r.machine.nproc} × ${r.machine.cpuModel}, ${r.machine.memoryGb} GB, Node.js ${r.machine.node}, load average before ${r.machine.loadAverage.join(' ')}`,
  );
  if (r.target.kind === 'own') console.log(`  code: ${codeLine(r.code)}`);
  console.log(`  results: ${Object.values(r.files).join(', ')}\n`);
}

const overloadTitle = (r) => (r.overload ? `, overload (${r.overload.factor} × the sustainable rate)` : '');

function markdown(r) {
  const table = (rows) =>
    [
      '| | |',
      '|---|---|',
      ...rows.map(([k, v, strong]) => `| ${strong ? `**${k}**` : k} | ${v.replaceAll('|', '\\|')} |`),
    ].join('\n');
  return [
    `# Checkout benchmark${overloadTitle(r)}, ${r.startedAt}`,
    '',
    `\`${r.command}\``,
    '',
    `Machine: ${r.machine.nproc} × ${r.machine.cpuModel}, ${r.machine.memoryGb} GB RAM, ${r.machine.kernel}, Node ${r.machine.node}; ` +
      `load average before the run ${r.machine.loadAverage.join(' ')}.`,
    '',
    ...(r.target.kind === 'own' ? [`Code: ${codeLine(r.code)}.`, ''] : []),
    '## Throughput and latency',
    '',
    table(headline(r)),
    '',
    '## Cost of one checkout',
    '',
    table(costRows(r)),
    '',
    ...statementTable(r.cost.statements),
    ...(r.ceiling ? ['## Ceiling of this machine', '', table(ceilingRows(r)), ''] : []),
    '## Where the time goes',
    '',
    table(detailRows(r)),
    '',
    '## Invariants',
    '',
    ...r.invariants.checks.map((c) => `- ${c.ok ? '✅' : '❌'} ${c.name}${c.ok ? '' : `: ${c.examples.join('; ')}`}`),
    '',
    `![throughput and latency](${path.basename(r.files.chart)})`,
    '',
  ].join('\n');
}

/** The most called statements (pg_stat_statements) per checkout; result.json has them all. */
function statementTable(st, top = 25) {
  if (!st?.list?.length) return [];
  const code = (q) => `\`${(q.length > 120 ? `${q.slice(0, 119)}…` : q).replaceAll('`', "'").replaceAll('|', '\\|')}\``;
  return [
    `### Postgres statements, the ${Math.min(top, st.list.length)} most called of ${st.list.length}`,
    '',
    '| role | calls/checkout | mean ms | statement |',
    '|---|--:|--:|---|',
    ...st.list
      .slice(0, top)
      .map((s) => `| ${svcOf(s.role)} | ${num(s.callsPerCheckout, 2)} | ${execMs(s.meanExecMs)} | ${code(s.query)} |`),
    '',
  ];
}

/** Rounds up to 1, 2 or 5 × 10^k, for axis ticks. */
function niceStep(max, ticks = 5) {
  const raw = Math.max(max, 1e-9) / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
}

const esc = (s) => String(s).replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]);

/** Two panels over the run's seconds: orders sent and decided per second; decision latency p50/p99. */
export function chartSvg(r) {
  const series = r.series;
  const W = 960;
  const H = 600;
  const left = 70;
  const right = 20;
  const panelH = 190;
  const panels = [90, 355]; // top y of each panel
  const n = Math.max(series.length, 1);
  const x = (i) => left + ((W - left - right) * i) / n;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">${esc(`Checkout benchmark: ${loadLine(r)}`)}</text>`,
    `<text x="${left}" y="42" fill="#555">${esc(`${r.startedAt} · ${r.machine.nproc} × ${r.machine.cpuModel}`)}</text>`,
  ];
  const axes = (top, max, unit, title) => {
    const step = niceStep(max);
    const yMax = Math.ceil(max / step) * step || 1;
    const y = (v) => top + panelH - (panelH * v) / yMax;
    out.push(`<text x="${left}" y="${top - 8}" font-weight="bold">${esc(title)}</text>`);
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      out.push(`<line x1="${left}" x2="${W - right}" y1="${y(v)}" y2="${y(v)}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${num(v)}${unit}</text>`);
    }
    const every = Math.max(1, niceStep(n, 10)); // whole seconds
    for (let s = 0; s <= n; s += every)
      out.push(`<text x="${x(s)}" y="${top + panelH + 16}" text-anchor="middle" fill="#555">${s}s</text>`);
    out.push(`<line x1="${left}" x2="${W - right}" y1="${top + panelH}" y2="${top + panelH}" stroke="#999"/>`);
    return y;
  };
  const legend = (top, items) =>
    items.forEach(([label, stroke], i) => {
      const lx = W - right - 150 * (items.length - i);
      out.push(`<rect x="${lx}" y="${top - 19}" width="14" height="4" fill="${stroke}"/>`);
      out.push(`<text x="${lx + 20}" y="${top - 14}">${esc(label)}</text>`);
    });
  const line = (y, key, stroke, dash = '', upTo = n) => {
    const pts = series
      .slice(0, upTo)
      .map((b, i) => (b[key] == null ? null : `${x(i + 0.5).toFixed(1)},${y(b[key]).toFixed(1)}`))
      .filter(Boolean);
    if (pts.length)
      out.push(`<polyline fill="none" stroke="${stroke}" stroke-width="2" ${dash} points="${pts.join(' ')}"/>`);
  };

  // Throughput: decided per second as bars, sent (and shed) per second as lines, and the
  // sustainable rate when there is one.
  const sustainable = r.sustainable?.perSecond ?? null;
  const maxRate = Math.max(1, sustainable ?? 0, ...series.map((b) => Math.max(b.sent, b.decided)));
  const y1 = axes(panels[0], maxRate, '', 'orders per second');
  const bw = Math.max(1, (W - left - right) / n - 2);
  series.forEach((b, i) =>
    out.push(
      `<rect x="${(x(i) + 1).toFixed(1)}" y="${y1(b.decided).toFixed(1)}" width="${bw.toFixed(1)}" height="${(panels[0] + panelH - y1(b.decided)).toFixed(1)}" fill="#4e79a7" opacity="0.8"/>`,
    ),
  );
  line(y1, 'sent', '#333', 'stroke-dasharray="4 3"', Math.ceil(r.rates.windowS));
  const shed = series.some((b) => b.shed > 0);
  if (shed) line(y1, 'shed', '#f28e2b', '', Math.ceil(r.rates.windowS));
  if (sustainable != null)
    out.push(
      `<line x1="${left}" x2="${W - right}" y1="${y1(sustainable).toFixed(1)}" y2="${y1(sustainable).toFixed(1)}" stroke="#76b7b2" stroke-width="2" stroke-dasharray="8 4"/>`,
    );
  legend(panels[0], [
    ['decided per second', '#4e79a7'],
    ['sent per second', '#333'],
    ...(shed ? [['shed (503) per second', '#f28e2b']] : []),
    ...(sustainable != null ? [['sustainable rate', '#76b7b2']] : []),
  ]);

  // Decision latency of the orders sent in each second.
  const maxLat = Math.max(1, ...series.map((b) => b.p99 ?? 0));
  const y2 = axes(panels[1], maxLat, ' ms', 'decision latency (POST sent → decided), by second sent');
  line(y2, 'p50', '#59a14f');
  line(y2, 'p99', '#e15759');
  legend(panels[1], [
    ['p50', '#59a14f'],
    ['p99', '#e15759'],
  ]);
  out.push(
    `<text x="${(W + left) / 2}" y="${H - 8}" text-anchor="middle" fill="#555">seconds since the load started</text>`,
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes result.json, summary.md and chart.svg into the run's folder. */
export function writeResults(dir, r) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(r.files.json, JSON.stringify(r, null, 2) + '\n');
  fs.writeFileSync(r.files.chart, chartSvg(r));
  fs.writeFileSync(r.files.markdown, markdown(r));
}
