/* The dashboard page: filters -> /api/panel/<id> -> charts and tables; #/event/<id> and
   #/subject/<id> drill down. No framework, no CDN. */
"use strict";
(() => {
  const main = document.getElementById("main");
  const form = document.getElementById("filters");
  let panels = [];

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
    return e;
  }
  async function api(path) {
    const response = await fetch("/api/" + path, {credentials: "same-origin"});
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }
  function query() {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (v) params.set(k, v);
    return params.toString();
  }
  function cell(column, value) {
    if (value === null || value === undefined) return h("td", {}, "");
    if (column === "event_id") return h("td", {}, h("a", {href: "#/event/" + encodeURIComponent(value)}, String(value).slice(0, 8) + "…"));
    if (column === "subject_id") return h("td", {}, h("a", {href: "#/subject/" + encodeURIComponent(value)}, value));
    if (column === "severity") return h("td", {class: "sev-" + value}, value);
    if (typeof value === "number") return h("td", {class: "num"}, Charts.fmt(value));
    return h("td", {}, Array.isArray(value) ? value.join(", ") : value);
  }
  function table(columns, rows) {
    if (!rows.length) return h("p", {class: "empty"}, "No rows for these filters.");
    const head = h("tr", {}, ...columns.map(c => h("th", {}, c)));
    return h("table", {}, h("thead", {}, head), h("tbody", {}, ...rows.map(r => h("tr", {}, ...r.map((v, i) => cell(columns[i], v))))));
  }
  function render(panel, data) {
    const rows = data.rows.map(r => Object.fromEntries(data.columns.map((c, i) => [c, r[i]])));
    if (panel.kind === "stat") {
      const row = rows[0] || {};
      return h("div", {class: "stats"}, ...data.columns.map(c => h("div", {class: "stat", "data-stat": c},
        h("div", {class: "v"}, typeof row[c] === "number" && c !== "completeness" ? Charts.fmt(row[c]) :
          c === "completeness" ? (100 * row[c]).toFixed(2) + "%" : row[c]), h("div", {class: "k"}, c.replace(/_/g, " ")))));
    }
    if (!rows.length) return h("p", {class: "empty"}, "Nothing in this range.");
    if (panel.kind === "stacked") return Charts.stacked(rows);
    if (panel.kind === "bars") {
      const items = rows.map(r => ({
        label: r.purpose_text ? `${r.label} ${r.purpose_text}` : r.label, value: r.value,
        title: Object.entries(r).map(([k, v]) => `${k}: ${v}`).join("\n"),
      }));
      return h("div", {}, Charts.bars(items), table(data.columns, data.rows));
    }
    return table(data.columns, data.rows);
  }
  async function overview() {
    const q = query();
    main.replaceChildren();
    const sections = [...new Set(panels.map(p => p.section))];
    const jobs = [];
    for (const s of sections) {
      const grid = h("div", {class: "grid"});
      main.append(h("section", {}, h("h2", {}, s), grid));
      for (const p of panels.filter(p => p.section === s)) {
        const body = h("div", {class: "body"}, h("p", {class: "loading"}, "…"));
        const card = h("div", {class: "card" + (p.kind === "stacked" || p.kind === "table" ? " wide" : ""), "data-panel": p.id, "data-state": "loading"},
          h("h3", {}, p.title), p.note ? h("p", {class: "note"}, p.note) : "", body);
        grid.append(card);
        jobs.push(api(`panel/${p.id}?${q}`).then(data => {
          body.replaceChildren(render(p, data));
          card.dataset.state = "ready";
          card.dataset.rows = data.rows.length;
        }).catch(err => {
          body.replaceChildren(h("p", {class: "error"}, err.message));
          card.dataset.state = "error";
        }));
      }
    }
    await Promise.all(jobs);
    document.body.dataset.ready = "overview";
  }
  async function eventView(id) {
    main.replaceChildren(h("p", {}, "Loading event…"));
    try {
      const data = await api("event/" + encodeURIComponent(id));
      const e = data.event;
      const kv = h("dl", {class: "kv"});
      for (const [k, v] of Object.entries(e)) {
        if (v === null || v === "" || (Array.isArray(v) && !v.length)) continue;
        kv.append(h("dt", {}, k), k === "subject_id" ? h("dd", {}, h("a", {href: "#/subject/" + encodeURIComponent(v)}, v)) : h("dd", {}, v));
      }
      main.replaceChildren(
        h("p", {}, h("a", {href: "#/"}, "← overview")),
        h("div", {class: "card wide", "data-view": "event"}, h("h3", {}, `Event ${e.event_id}`), kv),
        h("div", {class: "card wide", "data-view": "event-violations"}, h("h3", {}, "Violations of this event"),
          table(["rule", "severity", "message", "policy_version", "detected_at"],
                data.violations.map(v => [v.rule, v.severity, v.message, v.policy_version, v.detected_at]))));
    } catch (err) {
      main.replaceChildren(h("p", {class: "error"}, err.message));
    }
    document.body.dataset.ready = "event";
  }
  async function subjectView(id) {
    main.replaceChildren(h("p", {}, "Loading timeline…"));
    try {
      const data = await api("subject/" + encodeURIComponent(id));
      main.replaceChildren(h("p", {}, h("a", {href: "#/"}, "← overview")),
        h("div", {class: "card wide", "data-view": "subject"}, h("h3", {}, `Timeline of subject ${id} (pseudonymous)`),
          table(data.columns, data.rows)));
    } catch (err) {
      main.replaceChildren(h("p", {class: "error"}, err.message));
    }
    document.body.dataset.ready = "subject";
  }
  function route() {
    document.body.dataset.ready = "";
    const m = location.hash.match(/^#\/(event|subject)\/(.+)$/);
    if (m && m[1] === "event") return eventView(decodeURIComponent(m[2]));
    if (m && m[1] === "subject") return subjectView(decodeURIComponent(m[2]));
    return overview();
  }
  async function start() {
    try {
      const [filters, list] = await Promise.all([api("filters"), api("panels")]);
      panels = list;
      document.getElementById("f-from").value = filters.first;
      document.getElementById("f-to").value = filters.last;
      for (const s of filters.services) document.getElementById("f-service").append(h("option", {value: s}, s));
      for (const r of filters.rules) document.getElementById("f-rule").append(h("option", {value: r.id}, `${r.id} ${r.title}`));
      for (const s of filters.severities) document.getElementById("f-severity").append(h("option", {value: s}, s));
    } catch (err) {
      main.replaceChildren(h("p", {class: "error"}, "Cannot reach the dashboard's API: " + err.message));
      return;
    }
    form.addEventListener("submit", ev => { ev.preventDefault(); if (location.hash && location.hash !== "#/") location.hash = "#/"; else route(); });
    window.addEventListener("hashchange", route);
    route();
  }
  start();
})();
