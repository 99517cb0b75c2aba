/* The console's one stylesheet, served as /console/assets/console.css (written here as it is sent). */
export const CONSOLE_STYLE = String.raw`
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #57606a; --line: #d0d7de; --accent: #0b5cad;
  --ok: #116329; --bad: #a40e26; --wait: #7d4e00; --panel: #f6f8fa; font-family: system-ui, sans-serif; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d;
  --accent: #4493f8; --ok: #3fb950; --bad: #f85149; --wait: #d29922; --panel: #161b22; } }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); line-height: 1.45; }
a { color: var(--accent); }
main { padding: 1rem; max-width: 80rem; margin: 0 auto; }
main.narrow { max-width: 32rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .5rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { font-weight: 700; text-decoration: none; color: var(--fg); }
nav { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: none; color: var(--fg); }
.sign-out { margin: 0; }
button, .button { font: inherit; padding: .35rem .8rem; border: 1px solid var(--line); border-radius: .35rem; background: var(--panel); color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button[type="submit"] { border-color: var(--accent); }
label { display: block; font-weight: 600; margin: .5rem 0 .25rem; }
input, select { font: inherit; padding: .35rem .5rem; border: 1px solid var(--muted); border-radius: .35rem; background: var(--bg); color: var(--fg); max-width: 100%; }
#sign-in input { width: 100%; margin-bottom: .75rem; }
.muted { color: var(--muted); }
.problem, [role="alert"] { color: var(--bad); font-weight: 600; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .75rem; }
.figure { margin: 0; padding: .75rem; border: 1px solid var(--line); border-radius: .5rem; background: var(--panel); }
.figure figcaption { color: var(--muted); font-size: .9rem; }
.figure .value { font-size: 1.8rem; font-weight: 700; margin: .1rem 0; font-variant-numeric: tabular-nums; }
.spark { width: 100%; height: 2.5rem; display: block; }
.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
caption { text-align: left; color: var(--muted); padding: .25rem 0; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
.number { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; }
.status-confirmed { color: var(--ok); } .status-cancelled { color: var(--bad); } .status-pending { color: var(--wait); }
.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: flex-end; margin-bottom: 1rem; }
.filters label { margin-top: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
.diagram { --lanes: 3; }
.lanes-2 { --lanes: 2; } .lanes-3 { --lanes: 3; } .lanes-4 { --lanes: 4; } .lanes-5 { --lanes: 5; } .lanes-6 { --lanes: 6; } .lanes-7 { --lanes: 7; } .lanes-8 { --lanes: 8; }
.lanes, .steps { display: grid; grid-template-columns: repeat(var(--lanes), minmax(0, 1fr)); column-gap: .75rem; }
.lanes { position: sticky; top: 0; background: var(--bg); border-bottom: 2px solid var(--line); padding: .35rem 0; font-weight: 700; }
.steps { list-style: none; margin: 0; padding: 0; }
.step { margin: .35rem 0; padding: .4rem .55rem; border-left: 3px solid var(--accent); background: var(--panel); border-radius: .25rem; }
.step[data-kind="vote"][data-vote="no"], .step[data-kind="decision"] { border-left-color: var(--wait); }
.step[data-kind="ack"] { border-left-color: var(--ok); }
.step-service { display: none; color: var(--muted); font-size: .85rem; }
.step-time { font-size: .85rem; color: var(--muted); font-variant-numeric: tabular-nums; }
.gap { margin-left: .35rem; }
.rule { margin: .2rem 0 0; font-size: .85rem; font-style: italic; }
.lane-col-1 { grid-column: 1; } .lane-col-2 { grid-column: 2; } .lane-col-3 { grid-column: 3; } .lane-col-4 { grid-column: 4; }
.lane-col-5 { grid-column: 5; } .lane-col-6 { grid-column: 6; } .lane-col-7 { grid-column: 7; } .lane-col-8 { grid-column: 8; }
.participant-record { border: 1px solid var(--line); border-radius: .5rem; padding: .5rem .75rem; margin: .5rem 0; }
.participant-record h3 { margin: 0 0 .5rem; font-size: 1rem; }
.dead-letters { border-top: 1px solid var(--line); margin-top: 1rem; }
.letters { padding-left: 1.2rem; } .letters li { margin: .3rem 0; }
pre { overflow-x: auto; background: var(--panel); padding: .5rem; border-radius: .35rem; font-size: .85rem; }
code { overflow-wrap: anywhere; }
@media (max-width: 40rem) {
  main { padding: .75rem; }
  .lanes { display: none; }
  .steps { display: block; }
  .step-service { display: inline; }
  .figure .value { font-size: 1.4rem; }
  dl.facts { grid-template-columns: 1fr; } dl.facts dd { margin-bottom: .35rem; }
}
`;
