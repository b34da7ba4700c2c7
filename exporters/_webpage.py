"""``GET /``: the service's home page, a shell that shows traffic only once the API lets it.

The page itself holds no traffic data, so it is served without the token (the middleware opens
``/`` and nothing else): it has to load to ask for the token. Everything it shows comes from
guarded endpoints (``/api/v1/status``, ``/api/v1/pods``, ``/api/v1/notices``, ``/report``,
``/api/v1/pcap``), fetched
with ``Authorization: Bearer`` and the token the user typed once, kept in the tab's
``sessionStorage``. A link cannot carry a header, so the report and the packet download are
fetched too and handed to the browser as blob URLs. plotly.js and the script are inlined: the
page makes no request beyond its own service (air-gapped clusters).

Told its peers (``--peers``: the other nodes' services), the page links each pod to the same pod
on each of them (``PEER/?pod=NS/NAME``); a page opened with ``?pod=NS/NAME`` shows that pod only,
highlighted, so a pod that moved between nodes is one click from node to node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fastapi.responses import HTMLResponse
from fastapi.routing import APIRouter

#: Where the page's download button asks for a pod's last minutes of packets (issue 11's API).
PCAP_PATH = "/api/v1/pcap"
PCAP_SINCE = "5m"
REPORT_SINCE = "1h"
POLL_MS = 2000
#: The Notices panel: the latest notices of this long (``/api/v1/notices``), at most NOTICES_SHOWN.
NOTICES_SINCE = "1h"
NOTICES_SHOWN = 20

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.5em 0 0} .muted{color:#666}
#health span{display:inline-block;margin-right:1.5em}
table{border-collapse:collapse;margin-top:1em} td,th{padding:.25em .7em;text-align:right}
td:first-child,th:first-child{text-align:left} tr:nth-child(even){background:#f4f6f8}
button{cursor:pointer} #login{background:#fff6d6;padding:1em;border:1px solid #e0c96b}
.bad{color:#b00020} .ok{color:#137333} tr.focus{background:#fff6d6 !important;font-weight:bold}
.peers a{margin-right:.6em}
"""

_SCRIPT = """
const KEY = 'mirrorscope-token';
const $ = (id) => document.getElementById(id);
let previous = null;
const FOCUS = new URLSearchParams(window.location.search).get('pod');
$('focus').hidden = !FOCUS;

function auth() {
  const token = sessionStorage.getItem(KEY);
  return token ? {Authorization: 'Bearer ' + token} : {};
}

async function api(path) {
  const reply = await fetch(path, {headers: auth()});
  if (reply.status === 401) { $('login').hidden = false; throw new Error('token needed'); }
  if (!reply.ok) throw new Error(path + ': HTTP ' + reply.status + ' ' + await reply.text());
  return reply;
}

function fmt(n, unit) {
  const steps = ['', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < steps.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + steps[i] + unit;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function button(row, label, action) {
  const b = document.createElement('button');
  b.textContent = label;
  b.addEventListener('click', action);
  cell(row, '').appendChild(b);
  return b;
}

function showHealth(s) {
  $('node').textContent = s.node;
  const c = s.capture;
  const malformed = Object.values(c.malformed).reduce((a, b) => a + b, 0);
  const dropPct = c.received ? 100 * c.kernel_dropped / (c.received + c.kernel_dropped) : 0;
  $('ready').textContent = s.ready ? 'capturing' : 'not ready';
  $('ready').className = s.ready ? 'ok' : 'bad';
  $('received').textContent = fmt(c.received, 'packets');
  $('dropped').textContent = c.kernel_dropped + ' (' + dropPct.toFixed(2) + ' %)';
  $('malformed').textContent = malformed;
  $('uptime').textContent = Math.round(s.uptime_s) + ' s';
}

function showPods(now) {
  const before = new Map();
  if (previous) for (const p of previous.pods) before.set(p.namespace + '/' + p.pod, p);
  const dt = previous ? now.time - previous.time : 0;
  const shown = FOCUS ? now.pods.filter((p) => p.namespace + '/' + p.pod === FOCUS) : now.pods;
  const rows = shown.slice(0, TOP).map((p) => {
    const name = p.namespace + '/' + p.pod;
    const old = before.get(name);
    const rate = (k) => (old && dt > 0 ? Math.max(0, (p[k] - old[k]) / dt) : 0);
    return {name, p, tx: rate('tx_bytes'), rx: rate('rx_bytes')};
  });
  const body = $('pods');
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement('tr');
    tr.dataset.pod = r.name;
    if (r.name === FOCUS) tr.className = 'focus';
    cell(tr, r.name);
    cell(tr, fmt(r.tx * 8, 'bit/s'));
    cell(tr, fmt(r.rx * 8, 'bit/s'));
    cell(tr, fmt(r.p.tx_bytes, 'B'));
    cell(tr, fmt(r.p.rx_bytes, 'B'));
    button(tr, 'report', () => openReport(r.name)).className = 'report';
    button(tr, 'packets (' + PCAP_SINCE + ')', () => downloadPcap(r.name)).className = 'pcap';
    if (PEERS.length) peerLinks(cell(tr, ''), r.name);
    body.appendChild(tr);
  }
  $('empty').hidden = rows.length > 0;
  const names = rows.map((r) => r.name).reverse();
  Plotly.react('chart-rates', [
    {type: 'bar', orientation: 'h', name: 'tx', y: names, x: rows.map((r) => r.tx * 8).reverse()},
    {type: 'bar', orientation: 'h', name: 'rx', y: names, x: rows.map((r) => r.rx * 8).reverse()},
  ], {barmode: 'group', height: 120 + 40 * Math.max(rows.length, 1),
      margin: {l: 220, r: 20, t: 30, b: 40}, title: {text: 'bit/s now (top pods)'}});
  previous = now;
}

function peerLinks(td, pod) {
  td.className = 'peers';
  for (const peer of PEERS) {
    const a = document.createElement('a');
    a.href = peer + '/?' + new URLSearchParams({pod});
    a.textContent = new URL(peer).host;
    a.target = '_blank';
    td.appendChild(a);
  }
}

function showNotices(doc) {
  const body = $('notices');
  body.replaceChildren();
  for (const n of doc.notices) {
    const tr = document.createElement('tr');
    tr.dataset.note = n.note;
    cell(tr, new Date(n.ts * 1000).toISOString().replace('T', ' ').slice(0, 19));
    cell(tr, n.note);
    cell(tr, n.src_namespace && n.src_pod ? n.src_namespace + '/' + n.src_pod : n.src);
    cell(tr, n.target);
    cell(tr, n.count);
    cell(tr, n.msg);
    body.appendChild(tr);
  }
  $('notices-none').hidden = doc.notices.length > 0;
  $('notices-total').textContent = doc.total;
}

async function refresh() {
  try {
    showHealth(await (await api('/api/v1/status')).json());
    showPods(await (await api('/api/v1/pods')).json());
    const q = {since: NOTICES_SINCE, limit: NOTICES_SHOWN};
    if (FOCUS) q.pod = FOCUS;
    showNotices(await (await api('/api/v1/notices?' + new URLSearchParams(q))).json());
    $('error').textContent = '';
  } catch (e) {
    $('error').textContent = String(e.message || e);
  }
}

async function openReport(pod) {
  const tab = window.open('', '_blank');  // now, while the click still counts as the user's
  const q = new URLSearchParams({since: REPORT_SINCE, pod});
  const html = await (await api('/report?' + q)).blob();
  const url = URL.createObjectURL(new Blob([html], {type: 'text/html'}));
  if (tab) tab.location = url; else window.location = url;
}

async function downloadPcap(pod) {
  const q = new URLSearchParams({pod, since: PCAP_SINCE});
  const data = await (await api(PCAP_PATH + '?' + q)).blob();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(data);
  a.download = pod.replace('/', '_') + '-last-' + PCAP_SINCE + '.pcapng';
  document.body.appendChild(a);
  a.click();
  a.remove();
  $('downloaded').textContent = a.download + ' (' + data.size + ' bytes)';
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $('token').value.trim());
  $('token').value = '';
  $('login').hidden = true;
  refresh();
});
refresh();
setInterval(refresh, POLL_MS);
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mirrorscope</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style><script>{plotly}</script></head><body>
<h1>mirrorscope on <span id="node" class="muted">…</span></h1>
<form id="login" hidden><label>This service needs its API token:
<input id="token" type="password" autocomplete="off" size="40"></label>
<button type="submit">use it</button>
<span class="muted">kept in this tab's session storage only</span></form>
<p id="health"><span>capture: <b id="ready">…</b></span>
<span>received: <b id="received">…</b></span>
<span>dropped by the kernel: <b id="dropped">…</b></span>
<span>malformed: <b id="malformed">…</b></span>
<span>up: <b id="uptime">…</b></span></p>
<p id="error" class="bad"></p>
<div id="chart-rates"></div>
<table><thead><tr><th>pod</th><th>tx now</th><th>rx now</th><th>tx total</th><th>rx total</th>
<th>last {report_since}</th><th>packets</th>{peers_th}</tr></thead><tbody id="pods"></tbody></table>
<p id="focus" class="muted" hidden>Showing one pod; <a href="?">all pods</a></p>
<p id="empty" class="muted" hidden>No pod traffic seen yet.</p>
<p class="muted" id="downloaded"></p>
<h2>Notices <span class="muted">(last {notices_since}:
<span id="notices-total">…</span>)</span></h2>
<table><thead><tr><th>time (UTC)</th><th>note</th><th>source</th><th>target</th><th>count</th>
<th>message</th></tr></thead><tbody id="notices"></tbody></table>
<p id="notices-none" class="muted" hidden>No notices in the last {notices_since}.</p>
<script>const TOP = {top}, POLL_MS = {poll}, REPORT_SINCE = "{report_since}",
PCAP_PATH = "{pcap_path}", PCAP_SINCE = "{pcap_since}", PEERS = {peers},
NOTICES_SINCE = "{notices_since}", NOTICES_SHOWN = {notices_shown};
{script}</script></body></html>
"""


def page_html(top: int = 20, peers: Sequence[str] = ()) -> str:
    """The home page: the shell, plotly.js and the script; no data of the service.

    ``peers`` (base URLs) are embedded as a JSON list with ``<`` escaped, so no URL can close
    the script element.
    """
    from plotly.offline import get_plotlyjs  # noqa: PLC0415 - 4 MB of script, loaded on demand

    return _PAGE.format(
        style=_STYLE,
        plotly=get_plotlyjs(),
        script=_SCRIPT,
        top=top,
        poll=POLL_MS,
        report_since=REPORT_SINCE,
        pcap_path=PCAP_PATH,
        pcap_since=PCAP_SINCE,
        peers=json.dumps(list(peers)).replace("<", "\\u003c"),
        peers_th="<th>on peers</th>" if peers else "",
        notices_since=NOTICES_SINCE,
        notices_shown=NOTICES_SHOWN,
    )


def page_router(peers: Sequence[str] = ()) -> APIRouter:
    """``GET /``: the page, built once; open even with a token (see the module's docstring)."""
    router = APIRouter(tags=["open"])
    built: list[str] = []

    @router.get("/", summary="The service's home page (open: a shell, data needs the token)")
    def home() -> HTMLResponse:
        if not built:
            built.append(page_html(peers=peers))
        return HTMLResponse(built[0])

    return router
