// report.js draws the golens report (div.golens-report) it is part of, from
// the JSON in the report's own script.golens-data element into the report's
// own figure[data-view="i"] elements. It sets no element ids and no global
// names, so any number of reports (the same one twice too) share a page.
// Where a notebook runs the script out of place, it draws every report on
// the page not drawn yet instead.
// Every node is built with DOM calls and every text set with textContent,
// never innerHTML, so tokens and labels cannot inject markup. Tick labels
// come written from Go, as the PNG figures have them.
(function () {
  "use strict";
  const SVGNS = "http://www.w3.org/2000/svg";

  // ---- DOM
  function node(ns, tag, attrs, text) {
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const html = (tag, attrs, text) => node(null, tag, attrs, text);
  const svg = (tag, attrs, text) => node(SVGNS, tag, attrs, text);

  // tooltip is a report's own tip box.
  function tooltip(root) {
    const tip = html("div", { class: "tip", hidden: "" });
    root.append(tip);
    return {
      show(ev, lines) {
        tip.replaceChildren(...lines.map((l) => html("div", {}, l)));
        tip.hidden = false;
        tip.style.left = Math.min(ev.clientX + 14, innerWidth - tip.offsetWidth - 4) + "px";
        tip.style.top = Math.min(ev.clientY + 14, innerHeight - tip.offsetHeight - 4) + "px";
      },
      hide() { tip.hidden = true; },
    };
  }

  // textWidth measures the widest of labels as drawn with class cls in the
  // report, or estimates it where the report is not laid out (a hidden
  // notebook cell).
  function textWidth(ctx, labels, cls) {
    const s = svg("svg", { width: 0, height: 0, style: "position:absolute;visibility:hidden" });
    ctx.root.append(s);
    let w = 0;
    for (const l of labels) {
      const t = svg("text", { class: cls || "" }, l);
      s.append(t);
      w = Math.max(w, t.getComputedTextLength() || 7 * l.length);
    }
    s.remove();
    return Math.ceil(w);
  }

  // ---- numbers
  function fmt(v) {
    if (v === null) return "n/a";
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(4));
  }
  const quote = (t) => JSON.stringify(t);
  const linear = (d0, d1, r0, r1) => (v) => r0 + ((v - d0) / (d1 - d0)) * (r1 - r0);

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

  // frame makes an SVG with a W × H plot area inside margins m {l, r, t, b}
  // and the axis titles centred on its bottom and left sides, grown where a
  // title is longer than the side. Draw into g, whose origin is the area's
  // top left.
  function frame(ctx, cls, W, H, m, xlabel, ylabel) {
    const xw = xlabel ? textWidth(ctx, [xlabel], "label") : 0, yw = ylabel ? textWidth(ctx, [ylabel], "label") : 0;
    const cx = Math.max(W / 2, xw / 2 - m.l + 2), cy = Math.max(H / 2, yw / 2 - m.t + 2);
    const s = svg("svg", {
      width: Math.max(m.l + W + m.r, m.l + cx + xw / 2 + 2),
      height: Math.max(m.t + H + m.b, m.t + cy + yw / 2 + 2),
      class: cls,
    });
    const g = svg("g", { transform: `translate(${m.l},${m.t})` });
    s.append(g);
    if (xlabel) g.append(svg("text", { x: cx, y: H + m.b - 8, class: "label" }, xlabel));
    if (ylabel) g.append(svg("text", { transform: `translate(${14 - m.l},${cy}) rotate(-90)`, class: "label" }, ylabel));
    return { s, g };
  }

  // matrix draws values as square cells within about size px, with tick
  // labels and axis titles; hovering a cell outlines it and shows tip(i, j).
  function matrix(ctx, values, color, o) {
    const rows = values.length, cols = values[0].length;
    const cell = Math.max(2, Math.min(40, Math.floor(o.size / Math.max(rows, cols))));
    const W = cols * cell, H = rows * cell, every = Math.ceil(11 / cell); // label every k-th cell when cells are smaller than the text
    const thin = (ts) => ts.filter((_, i) => i % every === 0);
    const m = { l: textWidth(ctx, thin(o.yticks)) + (o.ylabel ? 28 : 8), r: 8, t: 8, b: textWidth(ctx, thin(o.xticks)) + (o.xlabel ? 30 : 10) };
    const { s, g } = frame(ctx, "matrix", W, H, m, o.xlabel, o.ylabel);
    g.append(svg("image", { href: cellImage(values, color).toDataURL(), width: W, height: H, preserveAspectRatio: "none" }));
    o.yticks.forEach((t, i) => {
      if (i % every === 0) g.append(svg("text", { x: -4, y: (i + 0.5) * cell, class: "ytick" }, t));
    });
    o.xticks.forEach((t, j) => {
      if (j % every === 0) g.append(svg("text", { transform: `translate(${(j + 0.5) * cell},${H + 4}) rotate(-90)`, class: "xtick" }, t));
    });
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
      ctx.tip.show(ev, o.tip(i, j));
    });
    area.addEventListener("mouseleave", () => { box.setAttribute("visibility", "hidden"); ctx.tip.hide(); });
    return { el: s, height: H, top: m.t };
  }

  // colorbar draws the scale and its ticks as a vertical bar level with a
  // matrix's cells.
  function colorbar(ctx, scale, mat) {
    const N = 128, top = mat.top, y = linear(scale.min, scale.max, top + mat.height, top);
    const s = svg("svg", { width: 30 + textWidth(ctx, scale.labels), height: top + mat.height + 8, class: "colorbar" });
    const column = Array.from({ length: N }, (_, i) => [scale.max - ((i + 0.5) / N) * (scale.max - scale.min)]);
    s.append(svg("image", { href: cellImage(column, scaler(scale)).toDataURL(), x: 4, y: top, width: 14, height: mat.height, preserveAspectRatio: "none" }),
      svg("rect", { x: 4, y: top, width: 14, height: mat.height, fill: "none", class: "frame" }));
    scale.ticks.forEach((t, i) => {
      s.append(svg("line", { x1: 18, x2: 22, y1: y(t), y2: y(t), class: "axis" }), svg("text", { x: 25, y: y(t), class: "ytick-r" }, scale.labels[i]));
    });
    return s;
  }

  const row = (...els) => { const d = html("div", { class: "row" }); d.append(...els); return d; };

  // legend keys the named series beside a chart, as HTML text that wraps,
  // so no name is cut.
  function legend(series, swatch) {
    const named = series.filter((s) => s.name !== "");
    if (named.length === 0) return [];
    const d = html("div", { class: "legend" });
    for (const s of named) {
      const e = html("div", { class: "legend-entry" });
      e.append(html("span", { class: "swatch", style: swatch(s) }), html("span", {}, s.name));
      d.append(e);
    }
    return [d];
  }

  // chart makes the SVG of a W × H plot area with the ticks of axes x
  // (omitted for a bar chart, which labels its own) and y, grid and axis
  // titles; the caller draws the marks.
  function chart(ctx, v, W, H, m) {
    const y = linear(v.y.min, v.y.max, H, 0);
    m = Object.assign({ l: textWidth(ctx, v.y.labels) + (v.ylabel ? 32 : 10), r: 12, t: 10, b: 24 + (v.xlabel ? 24 : 0) }, m);
    if (v.x) m.r = Math.max(m.r, textWidth(ctx, v.x.labels.slice(-1)) / 2 + 4);
    const c = frame(ctx, "chart", W, H, m, v.xlabel, v.ylabel);
    v.y.ticks.forEach((t, i) => {
      c.g.append(svg("line", { x1: 0, x2: W, y1: y(t), y2: y(t), class: "grid" }), svg("text", { x: -6, y: y(t), class: "ytick" }, v.y.labels[i]));
    });
    c.g.append(svg("rect", { width: W, height: H, class: "frame", fill: "none" }));
    const x = v.x && linear(v.x.min, v.x.max, 0, W);
    if (v.x) v.x.ticks.forEach((t, i) => c.g.append(svg("text", { x: x(t), y: H + 4, class: "xtick-h" }, v.x.labels[i])));
    return Object.assign(c, { x, y });
  }

  // ---- views
  function heatmap(ctx, fig, v) {
    const m = matrix(ctx, v.values, scaler(v.scale), {
      size: 520, xticks: v.xticks, yticks: v.yticks, xlabel: v.xlabel, ylabel: v.ylabel,
      tip: (i, j) => [`${v.ylabel || "row"}: ${v.yticks[i]}`, `${v.xlabel || "column"}: ${v.xticks[j]}`, fmt(v.values[i][j])],
    });
    fig.append(row(m.el, colorbar(ctx, v.scale, m)));
  }

  // attention shows a thumbnail panel per head; hovering one previews it
  // enlarged, clicking keeps it.
  function attention(ctx, fig, v) {
    const color = scaler(v.scale), panels = html("div", { class: "heads" }), main = html("div", { class: "head-main" });
    let kept = 0;
    const draw = (h) => {
      const m = matrix(ctx, v.patterns[h], color, {
        size: 440, xticks: v.xticks, yticks: v.yticks, xlabel: "key", ylabel: "query",
        tip: (i, j) => [v.heads[h], `query ${i}: ${quote(v.tokens[i])}`, `key ${j}: ${quote(v.tokens[j])}`, fmt(v.patterns[h][i][j])],
      });
      main.replaceChildren(html("div", { class: "head-name" }, v.heads[h]), row(m.el, colorbar(ctx, v.scale, m)));
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
    fig.append(html("div", { class: "hint" }, "Hover a head to preview it; click to keep it."), panels, main);
    draw(0);
  }

  function lineChart(ctx, fig, v) {
    const W = 560, H = 300, c = chart(ctx, v, W, H);
    const guide = svg("line", { y1: 0, y2: H, class: "guide", visibility: "hidden" }), dots = [];
    c.g.append(guide);
    v.series.forEach((s) => {
      c.g.append(svg("polyline", { points: s.x.map((xv, i) => `${c.x(xv)},${c.y(s.y[i])}`).join(" "), stroke: s.color, class: "line" }));
      dots.push(svg("circle", { r: 3.5, fill: s.color, visibility: "hidden" }));
    });
    c.g.append(...dots);
    const area = svg("rect", { width: W, height: H, fill: "transparent" });
    c.g.append(area);
    area.addEventListener("mousemove", (ev) => {
      const px = ev.clientX - area.getBoundingClientRect().left, lines = [];
      v.series.forEach((s, k) => { // nearest point of each series
        let best = 0;
        s.x.forEach((xv, i) => { if (Math.abs(c.x(xv) - px) < Math.abs(c.x(s.x[best]) - px)) best = i; });
        dots[k].setAttribute("cx", c.x(s.x[best]));
        dots[k].setAttribute("cy", c.y(s.y[best]));
        dots[k].setAttribute("visibility", "visible");
        lines.push(`${s.name || "series " + k}: ${fmt(s.y[best])} at ${v.xlabel || "x"} = ${fmt(s.x[best])}`);
      });
      guide.setAttribute("x1", px);
      guide.setAttribute("x2", px);
      guide.setAttribute("visibility", "visible");
      ctx.tip.show(ev, lines);
    });
    area.addEventListener("mouseleave", () => {
      [guide, ...dots].forEach((e) => e.setAttribute("visibility", "hidden"));
      ctx.tip.hide();
    });
    fig.append(row(c.s, ...legend(v.series, (s) => `background:${s.color}`)));
  }

  function barChart(ctx, fig, v) {
    const n = v.bars.length, W = Math.max(360, Math.min(760, 44 * n)), H = 280, bw = W / n;
    const lw = textWidth(ctx, v.xticks), slanted = lw > bw - 4;
    // Slanted labels run down-left from their bar at 40°.
    const m = slanted ? { b: 0.65 * lw + 20 + (v.xlabel ? 24 : 0), l: Math.max(0, 0.77 * textWidth(ctx, v.xticks.slice(0, 1)) - bw / 2 + 8) } : {};
    const y0 = linear(v.y.min, v.y.max, H, 0), yw = textWidth(ctx, v.y.labels) + (v.ylabel ? 32 : 10);
    const c = chart(ctx, v, W, H, Object.assign(m, { l: Math.max(m.l || 0, yw) }));
    v.xticks.forEach((l, i) => {
      const at = `translate(${(i + 0.5) * bw},${H + 6})`;
      c.g.append(svg("text", slanted ? { transform: at + " rotate(-40)", class: "xtick-s" } : { transform: at, class: "xtick-h" }, l));
    });
    v.bars.forEach((b, i) => {
      const r = svg("rect", { x: i * bw + 0.1 * bw, y: Math.min(y0(b), y0(0)), width: 0.8 * bw, height: Math.abs(y0(b) - y0(0)), class: "bar" });
      r.addEventListener("mousemove", (ev) => ctx.tip.show(ev, [quote(v.labels[i]), fmt(b)]));
      r.addEventListener("mouseleave", ctx.tip.hide);
      c.g.append(r);
    });
    c.g.append(svg("line", { x1: 0, x2: W, y1: y0(0), y2: y0(0), class: "axis" }));
    fig.append(c.s);
  }

  // histogram overlays the series' counts per bin, translucent where there
  // are several; hovering a bin shows its range and counts.
  function histogram(ctx, fig, v) {
    const W = 560, H = 300, c = chart(ctx, v, W, H), e = v.edges, bins = e.length - 1;
    const opacity = v.series.length > 1 ? 0.6 : 1;
    v.series.forEach((s) => s.y.forEach((n, i) => {
      if (n > 0) c.g.append(svg("rect", { x: c.x(e[i]), width: c.x(e[i + 1]) - c.x(e[i]), y: c.y(n), height: c.y(0) - c.y(n), fill: s.color, "fill-opacity": opacity, class: "bin" }));
    }));
    const box = svg("rect", { y: 0, height: H, class: "hover", visibility: "hidden" });
    const area = svg("rect", { width: W, height: H, fill: "transparent" });
    c.g.append(box, area);
    area.addEventListener("mousemove", (ev) => {
      const px = ev.clientX - area.getBoundingClientRect().left;
      const i = Math.max(0, Math.min(bins - 1, Math.floor((px / W) * bins)));
      box.setAttribute("x", c.x(e[i]));
      box.setAttribute("width", c.x(e[i + 1]) - c.x(e[i]));
      box.setAttribute("visibility", "visible");
      const range = `${v.xlabel || "x"} in [${fmt(e[i])}, ${fmt(e[i + 1])}${i === bins - 1 ? "]" : ")"}`;
      ctx.tip.show(ev, [range, ...v.series.map((s, k) => `${s.name || (v.series.length > 1 ? "series " + k : "count")}: ${s.y[i]}`)]);
    });
    area.addEventListener("mouseleave", () => { box.setAttribute("visibility", "hidden"); ctx.tip.hide(); });
    fig.append(row(c.s, ...legend(v.series, (s) => `background:${s.color};opacity:${opacity};height:10px;transform:none`)));
  }

  // ---- draw each report not drawn yet; a view that fails is reported (in
  // the report's data-errors, and on the console) and the rest still drawn.
  const views = { attention, heatmap, line: lineChart, bar: barChart, histogram };
  function fail(root, msg) {
    root.dataset.errors = (root.dataset.errors ? root.dataset.errors + " | " : "") + msg;
    console.error("golens report: " + msg);
  }
  function drawReport(root) {
    root.dataset.ready = "0"; // claimed: no other copy of this script draws it
    let data;
    try {
      data = JSON.parse(root.querySelector(":scope > script.golens-data").textContent);
    } catch (e) {
      fail(root, `data: ${e}`);
      return;
    }
    const ctx = { root, tip: tooltip(root) };
    for (const fig of root.querySelectorAll("figure[data-view]")) {
      const v = data.views[+fig.dataset.view];
      try {
        views[v.kind](ctx, fig, v);
      } catch (e) {
        fail(root, `view ${fig.dataset.view} (${v && v.kind}): ${e}`);
      }
    }
    root.dataset.ready = "1";
  }
  const own = document.currentScript && document.currentScript.closest("div.golens-report");
  (own ? [own] : document.querySelectorAll("div.golens-report")).forEach((r) => {
    if (!r.dataset.ready) drawReport(r);
  });
})();
