/* The compliance console: filters -> /api/panel/<id> -> charts and tables; #/event/<id>,
   #/subject/<id> drill down. Korean first (?lang=en for English): every text goes through t(),
   whose catalogue is /api/messages (privaudit/locale, gettext). Times are KST. No framework, no CDN. */
"use strict";
(() => {
  const main = document.getElementById("main");
  const form = document.getElementById("filters");
  const DAY = 86400000, KST = 9 * 3600000;
  let panels = [], bounds = {}, M = {catalogue: {}, names: {}, rules: {}}, lang = "ko";

  const t = s => M.catalogue[s] || s;
  /* t() with {name} parameters */
  const tf = (s, params) => t(s).replace(/\{(\w+)\}/g, (_, k) => (params[k] === undefined ? `{${k}}` : params[k]));

  /* the field whose names a panel's "label" or "series" column holds */
  const LABEL_FIELD = {use_by_purpose: "purpose", use_by_item: "item", use_by_action: "action",
                       violations_by_rule: "rule", downloads: "action"};
  const SERIES_FIELD = {events_by_day: "type", violations_by_day: "rule", consents_by_day: "change",
                        membership_by_day: "change"};
  /* columns whose values are codes, and the field that names them */
  const CODE_COLUMNS = {action: "action", purpose: "purpose", type: "type", actor_type: "actor_type",
                        kind_of_actor: "actor_type", severity: "severity", rule: "rule", change: "change",
                        scope: "scope", kind: "kind", recipient: "recipient", processor: "processor",
                        rule_severity: "severity", items: "item", data_items: "item", target: "purpose",
                        purposes: "purpose", basis: "basis", legal_basis: "basis", counterparty: "recipient"};
  const HIDDEN = new Set(["purpose_text"]);  // the policy's words are shown with the code itself
  const SHOWN_ROWS = 12;

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (v !== undefined && v !== null) e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
    return e;
  }
  async function api(path, init) {
    const sep = path.includes("?") ? "&" : "?";
    const response = await fetch(`/api/${path}${sep}lang=${lang}`, Object.assign({credentials: "same-origin"}, init || {}));
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }
  function query() {
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form).entries()) if (v) params.set(k, v);
    return params.toString();
  }
  /* a code as a person reads it: its name, and the code in small type */
  function name(field, code) { return ((M.names[field] || {})[code]) || ""; }
  function labelled(field, code) {
    const text = name(field, code);
    return text && text !== code ? `${text} (${code})` : String(code);
  }
  function codeCell(field, value) {
    const parts = String(value).split(", ").filter(Boolean);
    const span = h("span", {class: "codes"});
    parts.forEach((code, i) => {
      if (i) span.append(", ");
      const text = name(field, code) || (field === "recipient" ? name("processor", code) : "");
      span.append(text && text !== code ? h("span", {}, text, " ", h("code", {}, code)) : h("code", {}, code));
    });
    return span;
  }
  function time(value) {  // "2026-11-01T03:16:25.064+09:00" -> "2026-11-01 03:16:25"
    return String(value).slice(0, 19).replace("T", " ");
  }
  function cell(column, value, fields) {
    if (fields && fields[column] && value) {
      return column === "label" && fields[column] === "rule" ? cell("rule", value) : h("td", {}, codeCell(fields[column], value));
    }
    if (value === null || value === undefined || value === "") return h("td", {}, "");
    if (column === "event_id") return h("td", {class: "link"}, h("a", {href: "#/event/" + encodeURIComponent(value), title: value}, t("open")));
    if (column === "subject_id") return h("td", {}, h("a", {href: "#/subject/" + encodeURIComponent(value), class: "mono"}, String(value).slice(0, 12) + "…"));
    if (column === "severity" || column === "rule_severity") return h("td", {class: "sev-" + value}, name("severity", value) || value);
    if (column === "rule") return h("td", {class: "rule"}, h("code", {}, value), " ", M.names.rule[value] || "");
    if (CODE_COLUMNS[column]) return h("td", {}, codeCell(CODE_COLUMNS[column], value));
    if (typeof value === "number") return h("td", {class: "num"}, column === "completeness" ? (100 * value).toFixed(2) + "%" : Charts.fmt(value));
    if (typeof value === "boolean") return h("td", {}, value ? "✓" : "");
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(String(value))) return h("td", {class: "time"}, time(value));
    return h("td", {class: column === "message" || column === "first_findings" || column === "reason" ? "text" : ""}, Array.isArray(value) ? value.join(", ") : value);
  }
  /* A table; links first (never behind a scroll), long ones shortened with a button (all rows print). */
  function table(columns, rows, id, fields) {
    if (!rows.length) return h("p", {class: "empty"}, t("Nothing in this range."));
    const order = columns.map((c, i) => i).filter(i => !HIDDEN.has(columns[i]));
    order.sort((a, b) => (columns[b] === "event_id") - (columns[a] === "event_id"));
    const head = h("tr", {}, ...order.map(i => h("th", {"data-column": columns[i], class: rows.length && typeof rows[0][i] === "number" ? "num" : ""},
                                                  t((M.names.column || {})[columns[i]] || columns[i]))));
    const body = h("tbody", {}, ...rows.map((r, n) => {
      const tr = h("tr", {}, ...order.map(i => cell(columns[i], r[i], fields)));
      if (n >= SHOWN_ROWS) tr.className = "more";
      return tr;
    }));
    const wrap = h("div", {class: "table"}, h("table", {"data-table": id || ""}, h("thead", {}, head), body));
    if (rows.length > SHOWN_ROWS) {
      const button = h("button", {type: "button", class: "show-all"}, tf("Show all {n} rows", {n: Charts.fmt(rows.length)}));
      button.addEventListener("click", () => { wrap.classList.add("all"); button.remove(); });
      wrap.append(button);
    }
    return wrap;
  }
  function render(panel, data) {
    const rows = data.rows.map(r => Object.fromEntries(data.columns.map((c, i) => [c, r[i]])));
    if (panel.kind === "stat") {
      const row = rows[0] || {};
      return h("div", {class: "stats"}, ...data.columns.map(c => h("div", {class: "stat", "data-stat": c},
        h("div", {class: "v"}, c === "completeness" ? (100 * row[c]).toFixed(2) + "%" : typeof row[c] === "number" ? Charts.fmt(row[c]) : row[c]),
        h("div", {class: "k"}, (M.names.column || {})[c] || c))));
    }
    if (!rows.length) return h("p", {class: "empty"}, t("Nothing in this range."));
    if (panel.kind === "stacked") {
      const field = SERIES_FIELD[panel.id];
      return Charts.stacked(rows, s => (field === "rule" ? s : name(field, s)) || s, periodColumns());
    }
    if (panel.kind === "bars") {
      const field = LABEL_FIELD[panel.id];
      const items = rows.map(r => ({
        label: field === "rule" ? `${r.label} ${M.names.rule[r.label] || ""}` : field ? labelled(field, r.label) : r.label,
        value: r.value,
        // the tooltip is HTML: every value escaped
        title: data.columns.filter(c => !HIDDEN.has(c)).map(c => escapeHtml(`${(M.names.column || {})[c] || c}: ${r[c]}`)).join("<br>"),
      }));
      return h("div", {}, Charts.bars(items, t(panel.title)), table(data.columns, data.rows, panel.id, field ? {label: field} : null));
    }
    return table(data.columns, data.rows, panel.id);
  }
  /* The columns of a time series over the chosen period, as the server names them: KST hours for up
     to four days, else KST days ("2026-11-01T00:00:00.000+09:00"). */
  function periodColumns() {
    const from = document.getElementById("f-from").value, to = document.getElementById("f-to").value;
    if (!from || !to) return [];
    const start = Date.parse(from + "T00:00:00Z") - KST, end = Date.parse(to + "T00:00:00Z") - KST + DAY;
    if (!(end > start) || end - start > 400 * DAY) return [];
    const step = end - start <= 4 * DAY ? 3600000 : DAY;
    const out = [];
    for (let t = start; t < end; t += step) out.push(new Date(t + KST).toISOString().replace("Z", "+09:00"));
    return out;
  }
  async function settled() {  // charts draw on the next frames
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  }
  async function overview() {
    const q = query();
    Charts.reset();
    main.replaceChildren();
    const sections = [...new Set(panels.map(p => p.section))];
    const jobs = [];
    for (const s of sections) {
      const grid = h("div", {class: "grid"});
      main.append(h("section", {}, h("h2", {}, t(s)), grid));
      for (const p of panels.filter(p => p.section === s)) {
        const body = h("div", {class: "body"}, h("p", {class: "loading"}, "…"));
        const wide = p.kind === "stacked" || p.kind === "table" || p.id === "totals";
        const card = h("div", {class: "card" + (wide ? " wide" : ""), "data-panel": p.id, "data-state": "loading"},
          h("h3", {}, t(p.title)), p.note ? h("p", {class: "note"}, t(p.note)) : "", body);
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
    await settled();
    document.body.dataset.ready = "overview";
  }
  function printButton() {
    const button = h("button", {type: "button", class: "print"}, t("Print"));
    button.addEventListener("click", () => window.print());
    return button;
  }
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  }
  function back() { return h("p", {class: "back"}, h("a", {href: "#/"}, "← " + t("Overview"))); }
  async function eventView(id) {
    main.replaceChildren(h("p", {class: "loading"}, "…"));
    try {
      const data = await api("event/" + encodeURIComponent(id));
      const e = data.event;
      const kv = h("dl", {class: "kv"});
      for (const [k, v] of Object.entries(e)) {
        if (v === null || v === "" || HIDDEN.has(k) || (Array.isArray(v) && !v.length)) continue;
        const dd = k === "subject_id" ? h("dd", {}, h("a", {href: "#/subject/" + encodeURIComponent(v), class: "mono"}, v))
          : CODE_COLUMNS[k] ? h("dd", {}, codeCell(CODE_COLUMNS[k], v))
          : h("dd", {}, /^\d{4}-\d\d-\d\dT/.test(String(v)) ? time(v) + " KST" : v);
        kv.append(h("dt", {}, (M.names.column || {})[k] || k), dd);
      }
      const verdicts = data.violations.map(v => h("div", {class: "verdict", "data-rule": v.rule},
        h("h4", {}, h("code", {}, v.rule), " ", v.title, " ", h("span", {class: "sev-" + v.severity}, name("severity", v.severity))),
        h("dl", {class: "kv"},
          h("dt", {}, t("message")), h("dd", {class: "text"}, v.message),
          h("dt", {}, t("law")), h("dd", {}, v.law),
          h("dt", {}, t("what to do")), h("dd", {class: "remedy"}, v.remedy),
          h("dt", {}, t("policy version")), h("dd", {}, v.policy_version),
          h("dt", {}, t("detected at")), h("dd", {}, time(v.detected_at) + " KST"))));
      main.replaceChildren(back(),
        h("div", {class: "card wide", "data-view": "event"}, h("h3", {}, tf("Event {id}", {id: e.event_id})), kv),
        h("div", {class: "card wide", "data-view": "event-violations"}, h("h3", {}, t("Violations of this event")),
          verdicts.length ? h("div", {}, ...verdicts) : h("p", {class: "empty"}, t("This event broke no rule."))));
    } catch (err) {
      main.replaceChildren(back(), h("p", {class: "error"}, err.message));
    }
    document.body.dataset.ready = "event";
  }
  const SUBJECT_SECTIONS = () => [
    ["staff", t("Accessed by staff")], ["systems", t("Processed by systems")],
    ["provided", t("Provided to third parties and entrusted to processors")],
    ["consents", t("Consents and membership")], ["violations", t("Violations concerning this member")],
  ];
  async function subjectView(id) {
    main.replaceChildren(h("p", {class: "loading"}, "…"));
    try {
      const data = await api(`subject/${encodeURIComponent(id)}?${query()}`);
      const s = Object.fromEntries(data.summary.columns.map((c, i) => [c, data.summary.rows[0][i]]));
      const stats = h("div", {class: "stats"}, ...["events", "by_staff", "by_systems", "provided", "violations"].map(c =>
        h("div", {class: "stat", "data-stat": c}, h("div", {class: "v"}, Charts.fmt(s[c])), h("div", {class: "k"}, M.names.column[c] || c))));
      const cards = SUBJECT_SECTIONS().map(([key, title]) => h("div", {class: "card wide", "data-section": key},
        h("h3", {}, title, " ", h("span", {class: "count"}, Charts.fmt(data[key].rows.length))),
        table(data[key].columns, data[key].rows, "subject-" + key)));
      main.replaceChildren(back(),
        h("div", {class: "card wide", "data-view": "subject"},
          h("h2", {}, t("Processing history of a member")),
          h("p", {class: "note"}, t("What was done with this member's personal data, as the services recorded it (PIPA Art. 35: a member's request to see their data)")),
          h("dl", {class: "kv"},
            h("dt", {}, t("member")), h("dd", {class: "mono"}, id),
            h("dt", {}, t("Period")), h("dd", {}, `${data.from} ~ ${data.to} (KST)`)),
          stats, printButton()),
        ...cards);
    } catch (err) {
      main.replaceChildren(back(), h("p", {class: "error"}, err.message));
    }
    await settled();
    document.body.dataset.ready = "subject";
  }
  function route() {
    document.body.dataset.ready = "";
    const m = location.hash.match(/^#\/(event|subject)\/(.+)$/);
    if (m && m[1] === "event") return eventView(decodeURIComponent(m[2]));
    if (m && m[1] === "subject") return subjectView(decodeURIComponent(m[2]));
    return overview();
  }
  /* the presets, as KST days */
  function kstDay(ms) { return new Date(ms + KST).toISOString().slice(0, 10); }
  function preset(which) {
    const now = Date.now(), today = kstDay(now);
    const [y, m] = today.split("-").map(Number);
    const weekday = (new Date(today + "T00:00:00Z").getUTCDay() + 6) % 7;  // Monday 0
    const first = (yy, mm) => `${yy}-${String(mm).padStart(2, "0")}-01`;
    const lastOf = (yy, mm) => kstDay(Date.UTC(yy, mm, 1) - KST - DAY);  // mm 1-based: day before the next month's 1st
    switch (which) {
      case "today": return [today, today];
      case "week": return [kstDay(now - weekday * DAY), today];
      case "last7": return [kstDay(now - 6 * DAY), today];
      case "month": return [first(y, m), today];
      case "lastmonth": return m === 1 ? [first(y - 1, 12), lastOf(y - 1, 12)] : [first(y, m - 1), lastOf(y, m - 1)];
      case "data": return [bounds.first, bounds.last];
      default: return null;
    }
  }
  function translatePage() {
    document.documentElement.lang = lang;
    for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
    for (const e of document.querySelectorAll("[data-t-placeholder]")) e.placeholder = t(e.dataset.tPlaceholder);
    document.title = "privaudit · " + t("Compliance console");
    for (const l of ["ko", "en"]) {
      const a = document.getElementById("lang-" + l);
      a.href = `?lang=${l}${location.hash}`;
      a.classList.toggle("current", l === lang);
    }
  }
  async function start() {
    try {
      bounds = await api("filters");
      lang = new URLSearchParams(location.search).get("lang") || bounds.lang || "ko";
      const [messages, list] = await Promise.all([api("messages"), api("panels")]);
      M = messages;
      panels = list;
      translatePage();
      Charts.setOrder([...bounds.rules.map(r => r.id), "access", "share", "transfer", "consent", "membership",
                       "granted", "withdrawn", "SIGNUP", "WITHDRAWAL", "CONTRACT_END"]);
      document.getElementById("f-from").value = bounds.first;
      document.getElementById("f-to").value = bounds.last;
      document.getElementById("f-preset").value = "data";
      for (const s of bounds.services) document.getElementById("f-service").append(h("option", {value: s}, s));
      for (const r of bounds.rules) document.getElementById("f-rule").append(h("option", {value: r.id}, `${r.id} ${M.names.rule[r.id] || ""}`));
      for (const s of bounds.severities) document.getElementById("f-severity").append(h("option", {value: s}, name("severity", s) || s));
      if (!bounds.search) document.getElementById("s-q").placeholder = t("Member: pseudonym (p-...)");
    } catch (err) {
      main.replaceChildren(h("p", {class: "error"}, "Cannot reach the console's API: " + err.message));
      return;
    }
    document.getElementById("f-preset").addEventListener("change", ev => {
      const range = preset(ev.target.value);
      if (range) [document.getElementById("f-from").value, document.getElementById("f-to").value] = range;
    });
    for (const id of ["f-from", "f-to"]) document.getElementById(id).addEventListener("input", () => { document.getElementById("f-preset").value = ""; });
    form.addEventListener("submit", ev => {
      ev.preventDefault();
      const m = location.hash.match(/^#\/subject\//);
      if (m) return route();  // the member's page follows the period
      if (location.hash && location.hash !== "#/") location.hash = "#/"; else route();
    });
    document.getElementById("search").addEventListener("submit", async ev => {
      ev.preventDefault();
      const box = document.getElementById("s-q");
      try {
        // POSTed: a phone number or an address stays out of the URL, the history and the logs
        const found = await api("find-subject", {method: "POST", headers: {"Content-Type": "application/json"},
                                                 body: JSON.stringify({q: box.value})});
        box.value = "";
        location.hash = "#/subject/" + encodeURIComponent(found.subject_id);
      } catch (err) {
        main.prepend(h("p", {class: "error", "data-error": "search"}, err.message));
      }
    });
    window.addEventListener("hashchange", route);
    route();
  }
  start();
})();
