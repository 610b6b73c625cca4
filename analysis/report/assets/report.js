// report.js draws the views of a golens report from the JSON in #golens-data
// into the <figure data-view="i"> elements. Every node is built with DOM calls
// and every text set with textContent, never innerHTML, so tokens and labels
// cannot inject markup.
(function () {
  "use strict";
  const SVGNS = "http://www.w3.org/2000/svg";
  const CHAR = 6.6; // rough width of a label character, px
  const data = JSON.parse(document.getElementById("golens-data").textContent);
  let uid = 0;

  // ---- DOM
  function node(ns, tag, attrs, text) {
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const html = (tag, attrs, text) => node(null, tag, attrs, text);
  const svg = (tag, attrs, text) => node(SVGNS, tag, attrs, text);

  // ---- tooltip
  const tip = html("div", { class: "tip", hidden: "" });
  document.body.append(tip);
  function showTip(ev, lines) {
    tip.replaceChildren(...lines.map((l) => html("div", {}, l)));
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 14, innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = Math.min(ev.clientY + 14, innerHeight - tip.offsetHeight - 4) + "px";
  }
  const hideTip = () => { tip.hidden = true; };

  // ---- numbers and labels
  function fmt(v) {
    if (v === null) return "n/a";
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(4));
  }
  // show makes a token fit as an axis label: whitespace visible, long ones
  // shortened (the tooltip quotes it whole).
  function show(t) {
    t = t.replace(/\n/g, "↵").replace(/\t/g, "⇥");
    return t.length > 20 ? t.slice(0, 19) + "…" : t;
  }
  const quote = (t) => JSON.stringify(t);
  // (reduce, not Math.max(...xs): spreading a long series overflows the stack)
  const textWidth = (labels) => CHAR * labels.reduce((w, l) => Math.max(w, show(l).length), 0);
  function extent(vs) {
    const lo = vs.reduce((a, b) => Math.min(a, b)), hi = vs.reduce((a, b) => Math.max(a, b));
    return lo === hi ? [lo - 1, hi + 1] : [lo, hi];
  }
  const padded = ([lo, hi]) => [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)];
  const linear = (d0, d1, r0, r1) => (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);

  // niceTicks returns about n round numbers within [lo, hi].
  function niceTicks(lo, hi, n) {
    const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw));
    const step = mag * [1, 2, 5, 10].find((m) => m * mag >= raw);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
    return out;
  }

  // ---- colour: the same linear interpolation between stops as scale.go
  function scaler(scale) {
    const stops = scale.stops.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
    return (v) => {
      if (v === null) return [200, 200, 200];
      const t = Math.min(Math.max((v - scale.min) / (scale.max - scale.min), 0), 1) * (stops.length - 1);
      const i = Math.min(Math.floor(t), stops.length - 2), f = t - i;
      return stops[i].map((a, k) => Math.round(a + f * (stops[i + 1][k] - a)));
    };
  }

  // cellImage draws a matrix one pixel per cell, to be scaled up unsmoothed.
  function cellImage(values, color) {
    const rows = values.length, cols = values[0].length;
    const c = html("canvas", { width: cols, height: rows });
    const ctx = c.getContext("2d"), img = ctx.createImageData(cols, rows);
    values.forEach((row, i) => row.forEach((v, j) => img.data.set([...color(v), 255], 4 * (i * cols + j))));
    ctx.putImageData(img, 0, 0);
    return c;
  }

  // matrix draws values as square cells within about size px, with tick
  // labels and axis titles; hovering a cell outlines it and shows tip(i, j).
  function matrix(values, color, o) {
    const rows = values.length, cols = values[0].length;
    const cell = Math.max(2, Math.min(40, Math.floor(o.size / Math.max(rows, cols))));
    const W = cols * cell, H = rows * cell;
    const left = textWidth(o.yticks) + (o.ylabel ? 28 : 8), bottom = textWidth(o.xticks) + (o.xlabel ? 30 : 10);
    const s = svg("svg", { width: left + W + 4, height: 6 + H + bottom, class: "matrix" });
    const g = svg("g", { transform: `translate(${left},6)` });
    s.append(g);
    g.append(svg("image", { href: cellImage(values, color).toDataURL(), width: W, height: H, preserveAspectRatio: "none" }));
    const every = Math.ceil(11 / cell); // label every k-th cell when cells are smaller than the text
    o.yticks.forEach((t, i) => {
      if (i % every === 0) g.append(svg("text", { x: -4, y: (i + 0.5) * cell, class: "ytick" }, show(t)));
    });
    o.xticks.forEach((t, j) => {
      if (j % every === 0) g.append(svg("text", { transform: `translate(${(j + 0.5) * cell},${H + 4}) rotate(-90)`, class: "xtick" }, show(t)));
    });
    if (o.xlabel) g.append(svg("text", { x: W / 2, y: H + bottom - 8, class: "label" }, o.xlabel));
    if (o.ylabel) g.append(svg("text", { transform: `translate(${12 - left},${H / 2}) rotate(-90)`, class: "label" }, o.ylabel));
    const box = svg("rect", { width: cell, height: cell, class: "hover", visibility: "hidden" });
    const area = svg("rect", { width: W, height: H, fill: "transparent" });
    g.append(box, area);
    area.addEventListener("mousemove", (ev) => {
      const r = area.getBoundingClientRect();
      const i = Math.min(rows - 1, Math.floor((ev.clientY - r.top) / cell));
      const j = Math.min(cols - 1, Math.floor((ev.clientX - r.left) / cell));
      box.setAttribute("x", j * cell);
      box.setAttribute("y", i * cell);
      box.setAttribute("visibility", "visible");
      showTip(ev, o.tip(i, j));
    });
    area.addEventListener("mouseleave", () => { box.setAttribute("visibility", "hidden"); hideTip(); });
    return { el: s, height: H };
  }

  // colorbar draws the scale as a vertical bar of the given height, aligned
  // with a matrix's cells.
  function colorbar(scale, height) {
    const id = "golens-cb" + ++uid, y = linear(scale.min, scale.max, 6 + height, 6);
    const s = svg("svg", { width: 76, height: height + 14, class: "colorbar" });
    const grad = svg("linearGradient", { id, x1: 0, y1: 1, x2: 0, y2: 0 });
    scale.stops.forEach((c, i) => grad.append(svg("stop", { offset: i / (scale.stops.length - 1), "stop-color": c })));
    s.append(svg("defs"), svg("rect", { x: 4, y: 6, width: 14, height, fill: `url(#${id})`, class: "frame" }));
    s.firstChild.append(grad);
    for (const t of niceTicks(scale.min, scale.max, Math.max(4, Math.floor(height / 30)))) {
      s.append(svg("line", { x1: 18, x2: 22, y1: y(t), y2: y(t), class: "axis" }), svg("text", { x: 25, y: y(t), class: "ytick-r" }, fmt(t)));
    }
    return s;
  }

  const withBar = (m, scale) => { const d = html("div", { class: "row" }); d.append(m.el, colorbar(scale, m.height)); return d; };

  // ---- views
  function heatmap(fig, v) {
    const m = matrix(v.values, scaler(v.scale), {
      size: 520, xticks: v.xticks, yticks: v.yticks, xlabel: v.xlabel, ylabel: v.ylabel,
      tip: (i, j) => [`${v.ylabel || "row"}: ${v.yticks[i]}`, `${v.xlabel || "column"}: ${v.xticks[j]}`, fmt(v.values[i][j])],
    });
    fig.append(withBar(m, v.scale));
  }

  // attention shows a thumbnail panel per head; hovering one previews it
  // enlarged, clicking keeps it.
  function attention(fig, v) {
    const color = scaler(v.scale), panels = html("div", { class: "heads" }), main = html("div", { class: "head-main" });
    let kept = 0;
    const draw = (h) => {
      const m = matrix(v.patterns[h], color, {
        size: 440, xticks: v.tokens, yticks: v.tokens, xlabel: "key", ylabel: "query",
        tip: (i, j) => [v.heads[h], `query ${i}: ${quote(v.tokens[i])}`, `key ${j}: ${quote(v.tokens[j])}`, fmt(v.patterns[h][i][j])],
      });
      main.replaceChildren(html("div", { class: "head-name" }, v.heads[h]), withBar(m, v.scale));
    };
    v.heads.forEach((name, h) => {
      const p = html("div", { class: "head-panel", title: name });
      const thumb = cellImage(v.patterns[h], color);
      thumb.classList.add("thumb");
      p.append(thumb, html("div", {}, name));
      p.addEventListener("mouseenter", () => draw(h));
      p.addEventListener("mouseleave", () => draw(kept));
      p.addEventListener("click", () => {
        panels.children[kept].classList.remove("selected");
        p.classList.add("selected");
        kept = h;
      });
      panels.append(p);
    });
    panels.firstChild.classList.add("selected");
    draw(0);
    fig.append(html("div", { class: "hint" }, "Hover a head to preview it; click to keep it."), panels, main);
  }

  // chart makes the SVG of a W × H plot area with y ticks, grid and axis
  // titles; the caller draws the x ticks and the marks.
  function chart(v, ydomain, m, W, H) {
    const s = svg("svg", { width: m.l + W + m.r, height: m.t + H + m.b, class: "chart" });
    const g = svg("g", { transform: `translate(${m.l},${m.t})` });
    const y = linear(ydomain[0], ydomain[1], H, 0);
    s.append(g);
    for (const t of niceTicks(ydomain[0], ydomain[1], 6)) {
      g.append(svg("line", { x1: 0, x2: W, y1: y(t), y2: y(t), class: "grid" }), svg("text", { x: -6, y: y(t), class: "ytick" }, fmt(t)));
    }
    g.append(svg("rect", { width: W, height: H, class: "frame", fill: "none" }));
    if (v.xlabel) g.append(svg("text", { x: W / 2, y: H + m.b - 8, class: "label" }, v.xlabel));
    if (v.ylabel) g.append(svg("text", { transform: `translate(${14 - m.l},${H / 2}) rotate(-90)`, class: "label" }, v.ylabel));
    return { s, g, y };
  }

  function lineChart(fig, v) {
    const W = 560, H = 300, legend = textWidth(v.series.map((s) => s.name)) + 34;
    const xd = extent(v.series.flatMap((s) => s.x)), yd = padded(extent(v.series.flatMap((s) => s.y)));
    const c = chart(v, yd, { l: 64, r: legend, t: 10, b: 46 }, W, H), x = linear(xd[0], xd[1], 0, W);
    for (const t of niceTicks(xd[0], xd[1], 8)) c.g.append(svg("text", { x: x(t), y: H + 14, class: "xtick-h" }, fmt(t)));
    const guide = svg("line", { y1: 0, y2: H, class: "guide", visibility: "hidden" }), dots = [];
    c.g.append(guide);
    v.series.forEach((s, k) => {
      const pts = s.x.map((xv, i) => `${x(xv)},${c.y(s.y[i])}`).join(" ");
      c.g.append(svg("polyline", { points: pts, stroke: s.color, class: "line" }));
      dots.push(svg("circle", { r: 3.5, fill: s.color, visibility: "hidden" }));
      c.g.append(svg("line", { x1: W + 10, x2: W + 26, y1: 8 + 16 * k, y2: 8 + 16 * k, stroke: s.color, class: "line" }),
        svg("text", { x: W + 30, y: 8 + 16 * k, class: "legend" }, show(s.name)));
    });
    c.g.append(...dots);
    const area = svg("rect", { width: W, height: H, fill: "transparent" });
    c.g.append(area);
    area.addEventListener("mousemove", (ev) => {
      const px = ev.clientX - area.getBoundingClientRect().left, lines = [];
      v.series.forEach((s, k) => { // nearest point of each series
        let best = 0;
        s.x.forEach((xv, i) => { if (Math.abs(x(xv) - px) < Math.abs(x(s.x[best]) - px)) best = i; });
        dots[k].setAttribute("cx", x(s.x[best]));
        dots[k].setAttribute("cy", c.y(s.y[best]));
        dots[k].setAttribute("visibility", "visible");
        lines.push(`${s.name || "series " + k}: ${fmt(s.y[best])} at ${v.xlabel || "x"} = ${fmt(s.x[best])}`);
      });
      guide.setAttribute("x1", px);
      guide.setAttribute("x2", px);
      guide.setAttribute("visibility", "visible");
      showTip(ev, lines);
    });
    area.addEventListener("mouseleave", () => {
      [guide, ...dots].forEach((e) => e.setAttribute("visibility", "hidden"));
      hideTip();
    });
    fig.append(c.s);
  }

  function barChart(fig, v) {
    const n = v.bars.length, W = Math.max(360, Math.min(760, 44 * n)), H = 280, bw = W / n;
    const slanted = textWidth(v.labels) > bw - 4;
    const c = chart(v, padded(extent([0, ...v.bars])), { l: 64, r: 12, t: 10, b: (slanted ? 0.75 * textWidth(v.labels) : 6) + 40 }, W, H);
    v.labels.forEach((l, i) => {
      const at = `translate(${(i + 0.5) * bw},${H + 14})`;
      c.g.append(svg("text", slanted ? { transform: at + " rotate(-40)", class: "xtick-s" } : { transform: at, class: "xtick-h" }, show(l)));
    });
    v.bars.forEach((b, i) => {
      const top = Math.min(c.y(b), c.y(0)), r = svg("rect", { x: i * bw + 0.1 * bw, y: top, width: 0.8 * bw, height: Math.abs(c.y(b) - c.y(0)), class: "bar" });
      r.addEventListener("mousemove", (ev) => showTip(ev, [quote(v.labels[i]), fmt(b)]));
      r.addEventListener("mouseleave", hideTip);
      c.g.append(r);
    });
    c.g.append(svg("line", { x1: 0, x2: W, y1: c.y(0), y2: c.y(0), class: "axis" }));
    fig.append(c.s);
  }

  // ---- draw every view; one that fails is reported and the rest still drawn
  const draw = { attention, heatmap, line: lineChart, bar: barChart };
  for (const fig of document.querySelectorAll("figure[data-view]")) {
    const v = data.views[+fig.dataset.view];
    try {
      draw[v.kind](fig, v);
    } catch (e) {
      window.golensError(`view ${fig.dataset.view} (${v.kind}): ${e}`);
    }
  }
  document.documentElement.dataset.ready = "1";
})();
