// Live figures for /dashboard: reads /dashboard/data every few seconds and redraws the page's
// numbers, tables and charts. Every value goes in as text (textContent), never as HTML.
"use strict";
(function () {
  const EVERY_MS = 2000;
  const hours = document.querySelector("main").dataset.hours || "6";
  const charts = {};
  // The chart's x axis is the window asked for, whatever points there are in it.
  let span = [0, 1];
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

  function text(id, value) {
    const node = document.getElementById(id);
    if (node) node.textContent = value;
  }
  function percent(value) {
    return typeof value === "number" ? (value * 100).toFixed(1) + "%" : "-";
  }
  function ms(value) {
    return typeof value === "number" ? value.toFixed(1) + " ms" : "-";
  }
  function rows(id, items, cells) {
    const body = document.querySelector("#" + id + " tbody");
    if (!body) return;
    body.replaceChildren(...items.map((item) => {
      const row = document.createElement("tr");
      for (const value of cells(item)) {
        const cell = document.createElement("td");
        cell.textContent = value === null || value === undefined ? "" : String(value);
        row.appendChild(cell);
      }
      return row;
    }));
  }

  // One x axis for every release: the union of their intervals; a release without a point
  // in an interval is a gap (null), not a zero.
  function aligned(series, value) {
    const names = Object.keys(series);
    const times = [...new Set(names.flatMap((n) => series[n].map((p) => p.at)))].sort();
    const xs = times.map((t) => Date.parse(t) / 1000);
    const ys = names.map((n) => {
      const at = new Map(series[n].map((p) => [p.at, p]));
      return times.map((t) => (at.has(t) ? value(at.get(t)) : null));
    });
    return { names, data: [xs, ...ys] };
  }

  function draw(id, series, value, unit) {
    const node = document.getElementById(id);
    if (!node || typeof uPlot === "undefined") return;
    const { names, data } = aligned(series, value);
    const key = names.join("|");
    const old = charts[id];
    if (old && old.key === key) {
      old.plot.setData(data);
      return;
    }
    if (old) old.plot.destroy();
    const opts = {
      width: Math.max(node.clientWidth, 300), height: 180,
      series: [{}, ...names.map((n, i) => ({
        label: "release " + n, stroke: COLOURS[i % COLOURS.length], spanGaps: false,
        value: (u, v) => (v === null ? "-" : unit(v)),
      }))],
      scales: { x: { time: true, range: () => span } },
      axes: [{}, { size: 64, values: (u, ticks) => ticks.map(unit) }],
    };
    charts[id] = { key, plot: new uPlot(opts, data, node) };
  }

  function render(d) {
    const r = d.rollout;
    const underWay = r && (r.phase === "running" || r.phase === "paused");
    text("stable", d.stable ? d.stable.version : "none");
    text("candidate", underWay ? r.candidate : "none");
    text("phase", r ? r.phase : "none");
    text("share", r ? r.share + "% of clients (step " + (r.step + 1) + " of " + r.steps.length +
      ": " + r.steps.join(", ") + ")" : "");
    text("next", r && r.next ? r.next.action + (r.next.due ? " at " + r.next.due : "") + ": " +
      r.next.reasons.join("; ") : "none");
    if (r) {
      for (const side of ["candidate", "stable"]) {
        const row = document.querySelector('#figures tr[data-side="' + side + '"]');
        if (!row) continue;
        const f = r[side + "_figures"];
        row.querySelector(".label").textContent = side + " " + r[side];
        row.querySelector(".requests").textContent = f.requests;
        row.querySelector(".server_errors").textContent = f.server_errors;
        row.querySelector(".error_rate").textContent = percent(f.error_rate);
        row.querySelector(".p50").textContent = ms(f.p50_ms);
        row.querySelector(".p95").textContent = ms(f.p95_ms);
        row.querySelector(".ratings").textContent = f.ratings;
        row.querySelector(".satisfaction").textContent = percent(f.satisfaction);
      }
    }
    rows("audit", d.audit, (e) => [e.seq, e.at, e.actor, e.action + " " + e.subject,
      (e.from || "") + " → " + (e.to || ""), e.reason]);
    rows("feedback", d.feedback, (c) => [c.at, c.release, c.prompt, c.rating, c.comment]);
    rows("errors", d.errors, (g) => [g.error_class, g.where, g.shape, g.count, g.last_seen,
      g.releases.join(", ")]);
    rows("events", d.events, (e) => [e.at, e.kind, e.client, e.detail]);
    const end = Date.parse(d.now) / 1000;
    span = [end - d.hours * 3600, end];
    const perMinute = 60 / d.step_seconds;
    draw("chart-requests", d.series, (p) => p.requests * perMinute, (v) => v.toFixed(0));
    draw("chart-errors", d.series, (p) => {
      const served = p.requests - p.client_errors;
      return served > 0 ? p.server_errors / served : null;
    }, percent);
    draw("chart-latency", d.series, (p) => p.p95_ms, ms);
    draw("chart-satisfaction", d.series, (p) => (p.ratings > 0 ? p.satisfied / p.ratings : null),
      percent);
    text("updated", d.now);
    document.body.dataset.live = "yes";
  }

  async function refresh() {
    try {
      const answer = await fetch("/dashboard/data?hours=" + encodeURIComponent(hours),
        { credentials: "same-origin", cache: "no-store" });
      if (answer.status === 401) {
        window.location.assign("/dashboard/sign-in?expired=1");
        return;
      }
      if (answer.ok) render(await answer.json());
    } catch (error) {
      // The server is restarting or the network is down: keep the last figures, try again.
    }
  }

  refresh();
  setInterval(refresh, EVERY_MS);
})();
