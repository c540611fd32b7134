/* Small SVG charts, shipped with the package (no CDN). Each returns an element. */
"use strict";
const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#2e5bff", "#f79009", "#12b76a", "#f04438", "#7a5af8", "#06aed4", "#ee46bc", "#667085",
                   "#84cc16", "#b54708", "#0e9384", "#c11574", "#4e5ba6", "#dc6803", "#3538cd"];
  function el(name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function color(i) { return PALETTE[i % PALETTE.length]; }

  /* Horizontal bars: items = [{label, value, title}] */
  function bars(items) {
    const rowH = 20, labelW = 230, width = 600, barW = width - labelW - 60;
    const max = Math.max(1, ...items.map(d => d.value));
    const h = items.length * rowH + 6;
    const svg = el("svg", {viewBox: `0 0 ${width} ${h}`, width: "100%", height: h, class: "chart bars", role: "img",
                           preserveAspectRatio: "xMinYMin meet"});
    items.forEach((d, i) => {
      const y = i * rowH + 3;
      const g = el("g", {"data-label": d.label, "data-value": d.value});
      g.appendChild(el("title", {}, d.title || `${d.label}: ${fmt(d.value)}`));
      g.appendChild(el("text", {x: labelW - 6, y: y + 13, "text-anchor": "end"}, trim(d.label, 34)));
      g.appendChild(el("rect", {x: labelW, y: y + 2, height: rowH - 6, width: Math.max(1, d.value / max * barW), fill: color(0), rx: 2}));
      g.appendChild(el("text", {x: labelW + d.value / max * barW + 4, y: y + 13}, fmt(d.value)));
      svg.appendChild(g);
    });
    return svg;
  }

  /* Stacked columns per day: rows = [{day, series, value}] */
  function stacked(rows) {
    const days = [...new Set(rows.map(r => r.day))].sort();
    const series = [...new Set(rows.map(r => r.series))].sort();
    const totals = {};
    rows.forEach(r => { totals[r.day] = (totals[r.day] || 0) + r.value; });
    const max = Math.max(1, ...Object.values(totals));
    const width = Math.max(420, Math.min(1200, days.length * 14 + 60)), height = 200, left = 48, bottom = 22;
    const colW = Math.min(36, (width - left - 6) / Math.max(1, days.length));
    const svg = el("svg", {width: width, height: height, class: "chart stacked", role: "img"});
    svg.appendChild(el("line", {x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis"}));
    svg.appendChild(el("text", {x: left - 4, y: 12, "text-anchor": "end"}, fmt(max)));
    svg.appendChild(el("text", {x: left - 4, y: height - bottom, "text-anchor": "end"}, "0"));
    const at = {};
    rows.forEach(r => { (at[r.day] = at[r.day] || {})[r.series] = r.value; });
    days.forEach((day, i) => {
      let y = height - bottom;
      series.forEach((s, j) => {
        const v = (at[day] || {})[s] || 0;
        if (!v) return;
        const h = v / max * (height - bottom - 14);
        y -= h;
        const rect = el("rect", {x: left + i * colW + 1, y: y, width: Math.max(1, colW - 2), height: Math.max(0.5, h), fill: color(j),
                                  "data-day": day, "data-series": s, "data-value": v});
        rect.appendChild(el("title", {}, `${day} ${s}: ${fmt(v)}`));
        svg.appendChild(rect);
      });
      if (i % Math.max(1, Math.ceil(72 / colW)) === 0)
        svg.appendChild(el("text", {x: left + i * colW, y: height - 6}, tick(day)));
    });
    const wrap = document.createElement("div");
    wrap.appendChild(svg);
    const legend = document.createElement("div");
    legend.className = "legend";
    series.forEach((s, j) => {
      const span = document.createElement("span");
      const dot = document.createElement("i");
      dot.style.background = color(j);
      span.appendChild(dot);
      span.appendChild(document.createTextNode(s));
      legend.appendChild(span);
    });
    wrap.appendChild(legend);
    return wrap;
  }
  /* "2026-10-01T09:00:00.000Z" -> "10-01 09h", or "10-01" at midnight */
  function tick(t) {
    const s = String(t);
    const hour = s.slice(11, 13);
    return s.slice(5, 10) + (hour && s.slice(11, 16) !== "00:00" ? ` ${hour}h` : "");
  }
  function trim(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + "…" : s; }
  return {bars, stacked, fmt};
})();
