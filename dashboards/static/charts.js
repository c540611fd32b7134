/* Charts drawn with Apache ECharts (vendored under /static/vendor/echarts: no CDN), SVG renderer.
   Each function returns an element holding the chart; colours are fixed per series name (a
   rule keeps its colour whatever the filters). */
"use strict";
const Charts = (() => {
  const PALETTE = ["#2e5bff", "#f79009", "#12b76a", "#f04438", "#7a5af8", "#06aed4", "#ee46bc", "#667085",
                   "#84cc16", "#b54708", "#0e9384", "#c11574", "#4e5ba6", "#dc6803", "#3538cd", "#a15c07",
                   "#087443", "#6941c6"];
  // the page's font, named: ECharts measures labels with it, so what it lays out is what is drawn
  const FONT = getComputedStyle(document.body).fontFamily;
  let order = [];  // series names in a fixed order (rules, event types...): their colours
  const charts = new Set();
  function setOrder(names) { order = names.slice(); }
  function color(name) {
    let i = order.indexOf(name);
    if (i < 0) {  // not known in advance: a colour from its name, the same on every load
      i = 0;
      for (const c of String(name)) i = (i * 31 + c.charCodeAt(0)) >>> 0;
      i = order.length + i;
    }
    return PALETTE[i % PALETTE.length];
  }
  function fmt(n) { return Number(n).toLocaleString(document.documentElement.lang === "en" ? "en-US" : "ko-KR"); }

  function mount(height, option, points) {
    const box = document.createElement("div");
    box.className = "chart";
    box.style.height = height + "px";
    box.dataset.points = points;
    // drawn once the box is in the page and has its width
    requestAnimationFrame(() => {
      const chart = echarts.init(box, null, {renderer: "svg"});
      chart.setOption(Object.assign({animation: false, textStyle: {fontFamily: FONT}}, option));
      charts.add(chart);
      box.dataset.drawn = "1";
    });
    return box;
  }
  window.addEventListener("resize", () => charts.forEach(c => { if (!c.isDisposed()) c.resize(); }));
  function reset() { charts.forEach(c => c.dispose()); charts.clear(); }

  /* Horizontal bars: items = [{label, value, title}], largest first. Labels are never cut: the
     grid makes room for them (containLabel) and a long one wraps. */
  function bars(items, name) {
    const labels = items.map(d => d.label).reverse();
    const values = items.map(d => d.value).reverse();
    const titles = items.map(d => d.title).reverse();
    const option = {
      grid: {left: 8, right: 56, top: 6, bottom: 6, containLabel: true},
      xAxis: {type: "value", axisLabel: {formatter: fmt}, splitLine: {lineStyle: {color: "#eef0f3"}}},
      yAxis: {type: "category", data: labels, axisTick: {show: false},
              axisLabel: {width: 260, overflow: "break", lineHeight: 14, color: "#1d2433"}},
      // titles: HTML the caller escaped; the fallback is a number
      tooltip: {trigger: "item", formatter: p => titles[p.dataIndex] || fmt(p.value)},
      series: [{type: "bar", name: name || "", data: values, barMaxWidth: 18, itemStyle: {color: PALETTE[0]},
                label: {show: true, position: "right", formatter: p => fmt(p.value), color: "#1d2433"}}],
    };
    return mount(Math.max(90, items.length * 30 + 20), option, items.length);
  }

  /* Stacked columns over time: rows = [{day, series, value}]; ``label`` names a series; ``columns``
     every column of the period (so a day without events is an empty column, not a missing one). */
  function stacked(rows, label, columns) {
    const days = [...new Set([...(columns || []), ...rows.map(r => r.day)])].sort();
    const names = [...new Set(rows.map(r => r.series))].sort((a, b) => {
      const i = order.indexOf(a), j = order.indexOf(b);
      return (i < 0 ? 1e9 : i) - (j < 0 ? 1e9 : j) || String(a).localeCompare(String(b));
    });
    const at = {};
    rows.forEach(r => { (at[r.series] = at[r.series] || {})[r.day] = r.value; });
    const option = {
      grid: {left: 8, right: 16, top: 36, bottom: 8, containLabel: true},
      legend: {type: "scroll", top: 0, itemGap: 14, data: names.map(n => label(n))},
      tooltip: {trigger: "axis", axisPointer: {type: "shadow"}},
      xAxis: {type: "category", data: days.map(tick), axisTick: {alignWithLabel: true}},
      yAxis: {type: "value", axisLabel: {formatter: fmt}, splitLine: {lineStyle: {color: "#eef0f3"}}},
      series: names.map(n => ({type: "bar", stack: "all", name: label(n), itemStyle: {color: color(n)},
                               data: days.map(d => (at[n] || {})[d] || 0), barMaxWidth: 40})),
    };
    return mount(260, option, rows.length);
  }
  /* "2026-11-01T09:00:00.000+09:00" -> "11-01 09시" (KST), or "11-01" at midnight */
  function tick(t) {
    const s = String(t);
    const hour = s.slice(11, 13);
    const h = document.documentElement.lang === "en" ? "h" : "시";
    return s.slice(5, 10) + (hour && s.slice(11, 16) !== "00:00" ? ` ${hour}${h}` : "");
  }
  return {bars, stacked, fmt, setOrder, color, reset};
})();
