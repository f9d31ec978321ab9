// The scsp dashboard: the fleet, then one site's past and plan on one time axis, its sessions and the
// commands sent. It reads /api/v1 with the key typed in (kept in this tab only, sent as a Bearer
// token to this server alone) and polls with If-None-Match, so an unchanged answer costs a 304.
"use strict";

const $ = id => document.getElementById(id);
const REFRESH_MS = 10000;
const state = {
  etags: {}, cache: {}, site: null, hours: 24, chart: null, sparks: [], zoomed: false, tz: "UTC",
  fleet: null, plan: null, history: null, compliance: null, commands: null,
};

// -- talking to the API ------------------------------------------------------------------------
function key() { return $("key").value.trim(); }

async function api(path) {
  const headers = {"Authorization": "Bearer " + key()};
  if (state.etags[path]) headers["If-None-Match"] = state.etags[path];
  const reply = await fetch(path, {headers, cache: "no-store"});
  if (reply.status === 304) return {data: state.cache[path], changed: false};
  if (!reply.ok) {
    let text = `HTTP ${reply.status}`;
    try {
      const problem = await reply.json();
      text = `${problem.title || text}: ${problem.detail || ""}`;
    } catch (_) { /* not a problem document */ }
    throw new Error(`${path.split("?")[0]}: ${text}`);
  }
  const data = await reply.json();
  const etag = reply.headers.get("ETag");
  if (etag) { state.etags[path] = etag; state.cache[path] = data; }
  return {data, changed: true};
}

function showError(error) {
  const box = $("error");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  box.hidden = false;
  box.textContent = String(error.message || error);
}

// -- formatting --------------------------------------------------------------------------------
function kw(w, digits = 1) { return w == null ? "–" : (w / 1000).toFixed(digits) + " kW"; }
function kwh(v) { return v == null ? "–" : v.toFixed(1) + " kWh"; }
function seconds(t) { return new Date(t).getTime() / 1000; }

function localTime(ts, withDate = false) {
  const options = {timeZone: state.tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23"};
  if (withDate) Object.assign(options, {day: "2-digit", month: "short"});
  return new Intl.DateTimeFormat("en-GB", options).format(new Date(ts * 1000));
}
function localDate(ts) {
  return new Intl.DateTimeFormat("en-GB", {timeZone: state.tz, day: "2-digit", month: "short"}).format(new Date(ts * 1000));
}
function utcTime(ts) { return new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }
function when(iso) {
  if (!iso) return "–";
  const ts = seconds(iso);
  const today = Math.abs(Date.now() / 1000 - ts) < 12 * 3600;
  return `<span title="${utcTime(ts)}">${localTime(ts, !today)}</span>`;
}
function age(s) {
  if (s == null) return "–";
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                                      "'": "&#39;"}[c]));
}
function zoneName() {
  return state.tz === "UTC" ? "UTC" : `${state.tz} (${new Intl.DateTimeFormat("en-GB", {timeZone: state.tz,
    timeZoneName: "short"}).formatToParts(new Date()).find(p => p.type === "timeZoneName").value})`;
}

// A profile's limit at `ts` (unix s) in its unit; null where it says nothing.
function profileAt(profile, ts) {
  if (!profile || !profile.start_date_time || !profile.charging_profile_period.length) return null;
  const offset = ts - seconds(profile.start_date_time);
  if (offset < 0 || (profile.duration != null && offset >= profile.duration)) return null;
  let value = null;
  for (const period of [...profile.charging_profile_period].sort((a, b) => a.start_period - b.start_period)) {
    if (period.start_period <= offset) value = period.limit;
  }
  return value;
}
function profileSummary(profile) {
  if (!profile) return "–";
  const periods = profile.charging_profile_period;
  const unit = profile.charging_rate_unit;
  const fmt = v => unit === "W" ? kw(v) : `${v.toFixed(1)} A`;
  if (!periods.length) return "no periods";
  const start = profile.start_date_time ? seconds(profile.start_date_time) : null;
  const first = fmt(periods[0].limit);
  if (periods.length === 1) return first;
  const last = periods[periods.length - 1];
  const tail = start == null ? "" : ` from ${localTime(start + last.start_period)}`;
  return `${first} … ${fmt(last.limit)}${tail} (${periods.length} periods)`;
}
function verdictBadge(verdict) {
  if (!verdict) return `<span class="badge none">no report</span>`;
  const cls = {COMPLIANT: "ok", OVER_PLAN: "over", UNDER_PLAN: "under"}[verdict] || "none";
  return `<span class="badge ${cls}">${verdict.replace("_", " ")}</span>`;
}

// -- fleet -------------------------------------------------------------------------------------
function renderFleet(fleet) {
  $("fleet-section").hidden = false;
  $("spark-hours").textContent = String(state.hours);
  $("fleet-summary").textContent = `${fleet.sites.length} sites · limit ${kw(fleet.limit_w_now)} · planned ` +
    `${kw(fleet.planned_w_now)} · applied ${kw(fleet.applied_w_now)} · ${fleet.managed_sessions} of ` +
    `${fleet.sessions} sessions steered` + (fleet.over_plan ? ` · ${fleet.over_plan} OVER PLAN` : "") +
    (fleet.under_plan ? ` · ${fleet.under_plan} UNDER PLAN` : "");
  state.sparks.forEach(s => s.destroy());
  state.sparks = [];
  const body = $("fleet").querySelector("tbody");
  body.innerHTML = fleet.sites.map(site => {
    const verdicts = Object.entries(site.compliance).map(([v, n]) => `${verdictBadge(v)}×${n}`).join(" ") ||
      `<span class="muted">no reports</span>`;
    const load = site.applied_w_now != null ? kw(site.applied_w_now) : kw(site.delivered_w_recent);
    return `<tr data-site="${escape(site.site_id)}" class="${site.site_id === state.site ? "selected" : ""}">
      <td><b>${escape(site.site_id)}</b> <span class="muted">${escape(site.name || "")}</span></td>
      <td>${kw(site.limit_w_now)}</td><td>${load}</td><td>${kw(site.planned_peak_w)}</td>
      <td>${site.managed_sessions} / ${site.sessions}</td><td>${verdicts}</td>
      <td>${age(site.planned_at ? Math.max(0, Math.round(Date.now() / 1000 - seconds(site.planned_at))) : null)}${site.plan_status ? ` <span class="muted">${site.plan_status}</span>` : ""}</td>
      <td class="spark-cell"></td></tr>`;
  }).join("") || `<tr><td colspan="8" class="muted">no sites yet</td></tr>`;
  body.querySelectorAll("tr[data-site]").forEach((row, i) => {
    row.addEventListener("click", () => selectSite(row.dataset.site));
    const site = fleet.sites[i];
    const xs = site.sparkline_delivered_w.map((_, k) => seconds(site.sparkline_start) + k * site.sparkline_bucket_s);
    state.sparks.push(new uPlot({
      width: 180, height: 34, class: "spark", legend: {show: false}, cursor: {show: false},
      scales: {x: {time: true}, y: {range: (u, lo, hi) => [0, Math.max(hi || 0, 1)]}},
      axes: [{show: false}, {show: false}],
      series: [{}, {stroke: "#6a1b9a", fill: "rgba(106,27,154,.15)", width: 1, points: {show: false},
                    paths: uPlot.paths.stepped({align: 1})},
               {stroke: "#c62828", width: 1, dash: [3, 2], points: {show: false}, paths: uPlot.paths.stepped({align: 1})}],
    }, [xs, site.sparkline_delivered_w, site.sparkline_limit_w], row.querySelector(".spark-cell")));
  });
  if (!state.site && fleet.sites.length) selectSite(fleet.sites[0].site_id, false);
}

// -- one site ----------------------------------------------------------------------------------
function selectSite(site, reload = true) {
  if (state.site !== site) {
    state.site = site;
    state.zoomed = false;
    if (state.chart) { state.chart.destroy(); state.chart = null; }
    history.replaceState(null, "", `#site=${encodeURIComponent(site)}`);
  }
  document.querySelectorAll("#fleet tbody tr").forEach(r => r.classList.toggle("selected", r.dataset.site === site));
  if (reload) refreshSite().catch(showError);
}

function bucketFor(hours) { return hours <= 1 ? 15 : hours <= 6 ? 60 : hours <= 24 ? 300 : 900; }

// The chart's columns: the past from the history buckets, "now", then the plan's slots ahead.
function chartData(plan, hist, compliance, now) {
  const xs = [], limit = [], planned = [], applied = [], delivered = [], fixed = [];
  const push = (x, l, p, a, d, f) => { xs.push(x); limit.push(l); planned.push(p); applied.push(a);
                                        delivered.push(d); fixed.push(f); };
  const sum = (a, b) => (a == null || b == null) ? null : a + b;
  for (const b of hist ? hist.buckets : []) {
    const x = seconds(b.start);
    if (x >= now) break;
    push(x, b.limit_w, sum(b.planned_w, b.fixed_load_w), sum(b.applied_w, b.fixed_load_w ?? 0), b.delivered_w,
         b.fixed_load_w);
  }
  // The last bucket's delivered power holds until now (it is the latest measurement), and so does
  // its applied power where the newest reports say nothing of the current slot yet.
  const lastDelivered = delivered.length ? delivered[delivered.length - 1] : null;
  const lastApplied = applied.length ? applied[applied.length - 1] : null;
  if (plan) {
    const start = seconds(plan.start);
    const reported = compliance && compliance.plan_id === plan.id ? compliance.applied_w : null;
    const at = k => {
      const f = plan.fixed_load_w[k];
      const a = reported && reported[k] != null ? reported[k] + f : null;
      return [plan.limit_w[k], plan.site_power_w[k] + f, a, f];
    };
    const first = Math.max(0, Math.floor((now - start) / plan.slot_s));
    if (first < plan.n_slots) {
      const [l, p, a, f] = at(first);
      push(now, l, p, a ?? lastApplied, lastDelivered, f);
      for (let k = first + 1; k < plan.n_slots; k++) {
        const [l2, p2, a2, f2] = at(k);
        push(start + k * plan.slot_s, l2, p2, a2, null, f2);
      }
      const [l3, p3, a3, f3] = at(plan.n_slots - 1);
      push(start + plan.n_slots * plan.slot_s, l3, p3, a3, null, f3);
    }
  }
  return [xs, fixed, delivered, planned, applied, limit];
}

const SERIES = [
  {label: "fixed load", stroke: "#78909c", fill: "rgba(120,144,156,.28)", width: 1},
  {label: "delivered (CPO energy)", stroke: "#6a1b9a", fill: "rgba(106,27,154,.10)", width: 1.5},
  {label: "planned + fixed", stroke: "#1565c0", width: 2},
  {label: "applied + fixed (reported)", stroke: "#2e7d32", width: 3, dash: [2, 4]},
  {label: "limit", stroke: "#c62828", width: 2.5, dash: [9, 5]},
];

function activeRange(data, now) {
  const xs = data[0];
  let lo = null, hi = null;
  for (let i = 0; i < xs.length; i++) {
    const busy = [data[2][i], data[3][i], data[4][i]].some(v => v != null && v > 0);
    if (busy) { lo = lo == null ? xs[i] : Math.min(lo, xs[i]); hi = hi == null ? xs[i] : Math.max(hi, xs[i]); }
  }
  lo = Math.min(lo ?? now - 3600, now - 900);
  hi = Math.max(hi ?? now + 3600, now + 1800);
  const pad = (hi - lo) * 0.05;
  return [Math.max(xs[0], lo - pad), Math.min(xs[xs.length - 1], hi + pad)];
}

function drawChart(data, now) {
  const box = $("chart");
  const width = Math.max(600, box.clientWidth || 1000);
  if (state.chart) {
    const u = state.chart;
    const scale = [u.scales.x.min, u.scales.x.max];
    u.now = now;
    u.setData(data, !state.zoomed);
    if (state.zoomed) u.setScale("x", {min: scale[0], max: scale[1]});
    else { const [min, max] = activeRange(data, now); u.setScale("x", {min, max}); }
    return;
  }
  const stepped = uPlot.paths.stepped({align: 1});
  const opts = {
    width, height: 360,
    tzDate: ts => uPlot.tzDate(new Date(ts * 1e3), state.tz),
    cursor: {drag: {x: true, y: false, setScale: true}},
    scales: {x: {time: true}, y: {range: (u, lo, hi) => [0, Math.max(1000, hi * 1.08)]}},
    axes: [
      {grid: {stroke: "#eceff1"}, ticks: {stroke: "#cfd8dc"}, size: 46,
       // 24-hour times in the site's zone; the date under the first tick and under midnight.
       values: (u, splits) => splits.map((ts, i) => {
         const time = localTime(ts);
         return i === 0 || time === "00:00" ? `${time}\n${localDate(ts)}` : time;
       })},
      {label: "power (kW)", size: 60, grid: {stroke: "#eceff1"}, values: (u, vals) => vals.map(v => (v / 1000).toFixed(
        Math.abs(vals[1] - vals[0]) < 1000 ? 1 : 0))},
    ],
    series: [
      {label: "time", value: (u, ts) => ts == null ? "–" : `${localTime(ts, true)} (${utcTime(ts)})`},
      ...SERIES.map(s => ({...s, paths: stepped, points: {show: false}, value: (u, v) => kw(v, 2)})),
    ],
    hooks: {
      draw: [u => {
        const x = u.valToPos(u.now, "x", true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = "#263238"; ctx.lineWidth = 1.5 * devicePixelRatio; ctx.setLineDash([]);
        ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
        ctx.fillStyle = "#263238"; ctx.font = `${12 * devicePixelRatio}px system-ui`;
        ctx.fillText("now", x + 4 * devicePixelRatio, u.bbox.top + 14 * devicePixelRatio);
        ctx.restore();
      }],
      setSelect: [() => { state.zoomed = true; }],
      setCursor: [u => tooltip(u)],
    },
  };
  state.chart = new uPlot(opts, data, box);
  state.chart.now = now;
  const [min, max] = activeRange(data, now);
  state.chart.setScale("x", {min, max});
  box.querySelector(".u-over").addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  box.querySelector(".u-over").addEventListener("dblclick", () => { state.zoomed = true; });
}

function tooltip(u) {
  const tip = $("tooltip");
  const i = u.cursor.idx;
  if (i == null || u.cursor.left < 0) { tip.hidden = true; return; }
  const ts = u.data[0][i];
  const rows = SERIES.map((s, k) => `<div><span style="color:${s.stroke}">■</span> ${s.label}: ` +
    `<b>${kw(u.data[k + 1][i], 2)}</b></div>`).reverse().join("");
  tip.innerHTML = `<div><b>${localTime(ts, true)}</b> ${escape(state.tz)}</div><div class="muted">${utcTime(ts)}` +
    `</div>${rows}`;
  const rect = u.over.getBoundingClientRect();
  tip.hidden = false;
  const left = rect.left + u.cursor.left + 14;
  tip.style.left = `${Math.min(left, window.innerWidth - tip.offsetWidth - 8)}px`;
  tip.style.top = `${rect.top + Math.max(0, u.cursor.top - 10)}px`;
}

function renderReadout(data, now) {
  const i = data[0].indexOf(now);
  const facts = $("site-facts");
  const value = k => i < 0 ? null : data[k][i];
  const lastDelivered = [...data[2]].reverse().find(v => v != null) ?? null;
  facts.innerHTML = `<span id="now-readout" data-limit-w="${value(5) ?? ""}" data-planned-w="${value(3) ?? ""}"
      data-applied-w="${value(4) ?? ""}" data-fixed-w="${value(1) ?? ""}" data-delivered-w="${lastDelivered ?? ""}">` +
    `now ${localTime(now)} (${utcTime(now)}): <b>limit ${kw(value(5))}</b> · planned + fixed ${kw(value(3))} · ` +
    `applied + fixed ${kw(value(4))} · fixed ${kw(value(1))} · delivered (last bucket) ${kw(lastDelivered)}</span>` +
    (state.plan ? ` · plan ${state.plan.id} ${escape(state.plan.status)}, made ${when(state.plan.created_at)}` +
      (state.plan.warnings.length ? ` · <span class="error-inline">${escape(state.plan.warnings.join("; "))}</span>` : "")
      : " · no plan yet");
}

function renderSessions(plan, now) {
  const body = $("sessions").querySelector("tbody");
  if (!plan) { body.innerHTML = `<tr><td colspan="11" class="muted">no plan yet</td></tr>`; return; }
  const slot = Math.max(0, Math.min(plan.n_slots - 1, Math.floor((now - seconds(plan.start)) / plan.slot_s)));
  const rows = [...plan.sessions].sort((a, b) => (a.evse_uid || "").localeCompare(b.evse_uid || ""));
  body.innerHTML = rows.map(s => {
    const verdict = s.compliance ? s.compliance.verdict : null;
    const cls = verdict === "OVER_PLAN" ? "over" : verdict === "UNDER_PLAN" ? "under" : "";
    const unit = s.profile ? s.profile.charging_rate_unit : null;
    const limit = profileAt(s.profile, now);
    const limitText = limit == null ? "–" : unit === "W" ? kw(limit) : `${limit.toFixed(1)} A`;
    const c = s.last_command;
    const last = c ? `${c.kind === "set" ? "set" : "clear"} ${escape(c.response || c.state)}` +
      (c.result ? ` → ${escape(c.result)}` : c.state === "awaiting_result" ? " → …" : "") +
      ` <span class="muted">${when(c.created_at)}</span>` : "–";
    const short = s.shortfall_kwh > 0.05 ? ` <span class="muted">(short ${s.shortfall_kwh.toFixed(1)})</span>` : "";
    return `<tr class="${cls}" data-session="${escape(s.session_id)}" data-verdict="${verdict || ""}">
      <td>${escape(s.evse_uid || "?")}</td><td title="${escape(s.session_id)}">${escape(s.label || s.session_id)}</td>
      <td>${when(s.arrival)}</td><td>${s.departure ? when(s.departure) : `<span class="muted">not given</span>`}</td>
      <td>${kwh(s.energy_need_kwh)}</td><td>${kwh(s.delivered_kwh)}</td><td>${kwh(s.energy_kwh)}${short}</td>
      <td>${limitText} <span class="muted">${kw(s.power_w[slot])}</span></td>
      <td>${s.controllable ? escape(s.profile_state || "") : `<span class="muted">${escape(s.reason || "fixed")}</span>`}</td>
      <td>${last}</td><td class="verdict-${verdict || "none"}">${verdictBadge(verdict)}</td></tr>`;
  }).join("") || `<tr><td colspan="11" class="muted">no sessions</td></tr>`;
}

const KINDS = {set: "SetChargingProfile", get: "GET active profile", clear: "DELETE profile"};

function renderCommands(commands, plan) {
  const labels = Object.fromEntries((plan ? plan.sessions : []).map(s => [s.session_id, s.label || s.session_id]));
  const body = $("commands").querySelector("tbody");
  body.innerHTML = commands.map(c => {
    const took = c.result_ms ?? c.response_ms;
    return `<tr data-kind="${c.kind}" data-response="${escape(c.response || "")}">
      <td>${when(c.created_at)}</td><td>${KINDS[c.kind] || c.kind}</td>
      <td title="${escape(c.session_id)}">${escape(labels[c.session_id] || c.session_id.slice(0, 8))}</td>
      <td>${escape(c.reason || "")}</td><td>${profileSummary(c.profile)}</td>
      <td>${escape(c.response || c.error || c.state)}</td>
      <td>${escape(c.result || (c.state === "awaiting_result" ? "waiting" : c.state === "unknown" ? "no result" : "–"))}</td>
      <td>${took == null ? "–" : (took / 1000).toFixed(1) + " s"}</td></tr>`;
  }).join("") || `<tr><td colspan="8" class="muted">no commands yet</td></tr>`;
}

async function refreshSite() {
  const site = state.site;
  if (!site) return;
  const path = encodeURIComponent(site);
  const fleetSite = state.fleet ? state.fleet.sites.find(s => s.site_id === site) : null;
  state.tz = (fleetSite && fleetSite.time_zone) || "UTC";
  $("site-section").hidden = false;
  $("site-title").innerHTML = `${escape(site)} <span class="muted">${escape(fleetSite && fleetSite.name || "")}</span>`;
  $("tz-name").textContent = zoneName();
  const hours = state.hours;
  const [plan, hist, compliance, commands] = await Promise.all([
    fleetSite && fleetSite.plan_id != null ? api(`/api/v1/sites/${path}/plan`) : Promise.resolve({data: null}),
    api(`/api/v1/sites/${path}/history?hours=${hours}&bucket_s=${bucketFor(hours)}`),
    api(`/api/v1/sites/${path}/compliance`),
    api(`/api/v1/commands?site=${path}&limit=40&kind=set&kind=clear` + ($("readbacks").checked ? "&kind=get" : "")),
  ]);
  if (state.site !== site) return;
  state.plan = plan.data; state.history = hist.data; state.compliance = compliance.data; state.commands = commands.data;
  const now = Math.floor(Date.now() / 1000);
  const data = chartData(state.plan, state.history, state.compliance, now);
  drawChart(data, now);
  renderReadout(data, now);
  renderSessions(state.plan, now);
  renderCommands(state.commands || [], state.plan);
  window.scspDashboard = {site, now, data, series: SERIES.map(s => s.label), chart: state.chart};
}

async function refresh() {
  if (!key()) return;
  try {
    const fleet = await api(`/api/v1/fleet?hours=${state.hours}`);
    state.fleet = fleet.data;
    // Drawn every time, also after a 304: the plans' ages move on with the clock.
    renderFleet(state.fleet);
    await refreshSite();
    showError(null);
    $("status").textContent = `updated ${localTime(Date.now() / 1000)} (${utcTime(Date.now() / 1000)})`;
  } catch (error) {
    showError(error);
  }
}

// -- start -------------------------------------------------------------------------------------
(function start() {
  const params = new URLSearchParams(location.hash.slice(1));
  // A link may carry the key in its fragment (#key=...), which browsers never send to a server.
  if (params.get("key")) sessionStorage.setItem("scsp-key", params.get("key"));
  if (params.get("site")) state.site = params.get("site");
  history.replaceState(null, "", state.site ? `#site=${encodeURIComponent(state.site)}` : location.pathname);
  $("key").value = sessionStorage.getItem("scsp-key") || "";
  $("login").addEventListener("submit", event => {
    event.preventDefault();
    sessionStorage.setItem("scsp-key", key());
    state.etags = {};
    refresh();
  });
  $("hours").addEventListener("change", () => {
    state.hours = Number($("hours").value);
    state.zoomed = false;
    state.etags = {};
    refresh();
  });
  $("readbacks").addEventListener("change", () => refreshSite().catch(showError));
  $("zoom-active").addEventListener("click", () => {
    if (!state.chart) return;
    state.zoomed = false;
    const [min, max] = activeRange(state.chart.data, state.chart.now);
    state.chart.setScale("x", {min, max});
  });
  $("zoom-all").addEventListener("click", () => {
    if (!state.chart) return;
    state.zoomed = true;
    const xs = state.chart.data[0];
    state.chart.setScale("x", {min: xs[0], max: xs[xs.length - 1]});
  });
  window.addEventListener("resize", () => {
    if (state.chart) state.chart.setSize({width: Math.max(600, $("chart").clientWidth), height: 360});
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
