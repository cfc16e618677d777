// A small SVG line chart: named series of [x, y] points (x ascending), labelled axes with ticks, a
// hover read-out, a colour per series name that stays the same across reloads, a log scale for a
// loss that spans decades, and the data as a table for those who do not see the chart. Adding a
// point costs O(1); a frame draws at most MAX_DRAWN points per series, however long the job.
const COLORS = ["#2f6fdb", "#e8710a", "#1e8e3e", "#c0392b", "#8e44ad", "#16a085", "#7f8c8d", "#b7950b"];
const NS = "http://www.w3.org/2000/svg";
const HEIGHT = 240, MARGIN = { left: 56, right: 12, top: 10, bottom: 40 };
const MAX_DRAWN = 1200;

// The same name always gets the same colour: a trial keeps its colour in the live view and after a reload.
export function colorOf(name) {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.codePointAt(0)) >>> 0;
  return COLORS[hash % COLORS.length];
}

function niceTicks(low, high, count = 5) {
  if (!(high > low)) return [low];
  const raw = (high - low) / count, power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const label = (value) => (Math.abs(value) >= 1e4 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(1) : String(Number(value.toPrecision(4))));

function svgElement(name, attributes, text) {
  const el = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, value);
  if (text !== undefined) el.textContent = text;
  return el;
}

export class LineChart {
  constructor(container, { yLabel = "", xLabel = "step", logY = "auto" } = {}) {
    Object.assign(this, { container, yLabel, xLabel, logY, series: new Map(), pending: false });
    this.svg = svgElement("svg", { role: "img", height: HEIGHT });
    this.tip = Object.assign(document.createElement("div"), { className: "chart-tip", hidden: true });
    this.legend = Object.assign(document.createElement("div"), { className: "legend" });
    this.table = document.createElement("details");
    this.table.innerHTML = "<summary>Data as a table</summary>";
    this.table.addEventListener("toggle", () => this.table.open && this.fillTable());
    container.style.position = "relative";
    container.append(this.svg, this.tip, this.legend, this.table);
    this.svg.addEventListener("mousemove", (event) => this.readOut(event));
    this.svg.addEventListener("mouseleave", () => { this.tip.hidden = true; this.schedule(); });
    new ResizeObserver(() => this.schedule()).observe(container);
    this.render();
  }

  set(name, points, { dashed = false } = {}) {
    const entry = { points: [], dashed, min: Infinity, max: -Infinity, positive: true };
    this.series.set(name, entry);
    points.forEach((point) => this.push(entry, point));
    this.schedule();
  }

  add(name, point, options = {}) {
    if (!this.series.has(name)) this.set(name, [], options);
    this.push(this.series.get(name), point);
    this.schedule();
  }

  push(entry, [x, y]) {
    entry.points.push([x, y]);
    if (!Number.isFinite(y)) return;
    entry.min = Math.min(entry.min, y);
    entry.max = Math.max(entry.max, y);
    entry.positive &&= y > 0;
  }

  schedule() {  // many points in one frame: one render
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  bounds() {
    let x0 = 0, x1 = 1, y0 = Infinity, y1 = -Infinity, count = 0, positive = true;
    for (const s of this.series.values()) {
      if (!s.points.length) continue;
      x0 = Math.min(x0, s.points[0][0]);
      x1 = Math.max(x1, s.points.at(-1)[0]);
      if (s.min <= s.max) { y0 = Math.min(y0, s.min); y1 = Math.max(y1, s.max); positive &&= s.positive; }
      count += s.points.filter(([, y]) => Number.isFinite(y)).length;
    }
    if (!(y0 <= y1)) { y0 = 0; y1 = 1; }
    const log = this.logY === true || (this.logY === "auto" && positive && y0 > 0 && y1 / y0 >= 100);
    if (!log) { y0 = Math.min(y0, 0); if (y1 === y0) y1 = y0 + 1; }
    return { x0, x1, y0, y1, log, count };
  }

  render() {
    const width = Math.max(280, this.container.clientWidth || 600);
    const { x0, x1, y0, y1, log, count } = (this.scale = this.bounds());
    const [left, right, top, bottom] = [MARGIN.left, width - MARGIN.right, MARGIN.top, HEIGHT - MARGIN.bottom];
    const ty = log ? Math.log10 : (v) => v;
    const sx = (x) => left + ((x - x0) / (x1 - x0 || 1)) * (right - left);
    const sy = (y) => bottom - ((ty(y) - ty(y0)) / (ty(y1) - ty(y0) || 1)) * (bottom - top);
    Object.assign(this.scale, { sx, sy, left, right });
    this.svg.setAttribute("viewBox", `0 0 ${width} ${HEIGHT}`);
    this.svg.dataset.points = String(count);
    this.svg.setAttribute("aria-label", this.summary());
    const parts = [];
    const yTicks = log ? niceTicks(Math.log10(y0), Math.log10(y1)).map((p) => 10 ** p) : niceTicks(y0, y1);
    for (const y of yTicks.filter((v) => v >= y0 && v <= y1)) {
      parts.push(svgElement("line", { x1: left, x2: right, y1: sy(y), y2: sy(y), stroke: "#e4e7ec" }));
      parts.push(svgElement("text", { x: left - 6, y: sy(y) + 3, class: "tick", "text-anchor": "end" }, label(y)));
    }
    for (const x of niceTicks(x0, x1, Math.max(2, Math.floor((right - left) / 90)))) {
      parts.push(svgElement("line", { x1: sx(x), x2: sx(x), y1: bottom, y2: bottom + 4, stroke: "#98a2b3" }));
      parts.push(svgElement("text", { x: sx(x), y: bottom + 15, class: "tick", "text-anchor": "middle" }, label(x)));
    }
    parts.push(svgElement("line", { x1: left, x2: right, y1: bottom, y2: bottom, stroke: "#98a2b3" }));
    parts.push(svgElement("line", { x1: left, x2: left, y1: top, y2: bottom, stroke: "#98a2b3" }));
    parts.push(svgElement("text", { x: (left + right) / 2, y: HEIGHT - 6, class: "axis", "text-anchor": "middle" }, this.xLabel));
    parts.push(svgElement("text", { x: 12, y: (top + bottom) / 2, class: "axis", "text-anchor": "middle",
      transform: `rotate(-90 12 ${(top + bottom) / 2})` }, `${this.yLabel}${log ? " (log scale)" : ""}`));
    for (const [name, s] of this.series) {
      const shown = thinned(s.points.filter(([, y]) => Number.isFinite(y) && (!log || y > 0)));
      const attributes = { fill: "none", stroke: colorOf(name), "stroke-width": 2,
        points: shown.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ") };
      if (s.dashed) attributes["stroke-dasharray"] = "6 4";
      parts.push(svgElement("polyline", attributes));
      if (shown.length === 1) parts.push(svgElement("circle", { cx: sx(shown[0][0]), cy: sy(shown[0][1]), r: 3, fill: colorOf(name) }));
    }
    if (this.hoverX !== undefined && !this.tip.hidden) {
      parts.push(svgElement("line", { x1: sx(this.hoverX), x2: sx(this.hoverX), y1: top, y2: bottom, stroke: "#98a2b3", "stroke-dasharray": "2 3" }));
    }
    this.svg.replaceChildren(...parts);
    this.legend.innerHTML = [...this.series.keys()]
      .map((name) => `<span><i class="swatch" style="background:${colorOf(name)}"></i>${name.replace(/[<>&]/g, "")}</span>`)
      .join(" &nbsp; ");
    if (this.table.open) this.fillTable();
  }

  summary() {
    const latest = [...this.series.entries()].filter(([, s]) => s.points.length)
      .map(([name, s]) => `${name} ${label(s.points.at(-1)[1])} at ${this.xLabel} ${s.points.at(-1)[0]}`);
    return `${this.yLabel} by ${this.xLabel}: ${latest.join("; ") || "no points yet"}`;
  }

  // The value of every series at the x nearest the pointer.
  readOut(event) {
    if (!this.scale || !this.series.size) return;
    const { x0, x1, left, right } = this.scale;
    const box = this.svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * Number(this.svg.viewBox.baseVal.width);
    const x = x0 + ((px - left) / (right - left)) * (x1 - x0);
    const rows = [];
    for (const [name, s] of this.series) {
      const point = nearest(s.points, x);
      if (point) rows.push(`<i class="swatch" style="background:${colorOf(name)}"></i>${name.replace(/[<>&]/g, "")}: ${label(point[1])} at ${this.xLabel} ${point[0]}`);
    }
    this.hoverX = Math.min(Math.max(x, x0), x1);
    this.tip.innerHTML = rows.join("<br>");
    this.tip.hidden = rows.length === 0;
    this.tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 220)}px`;
    this.tip.style.top = "8px";
    this.schedule();
  }

  fillTable() {
    const names = [...this.series.keys()];
    const xs = [...new Set([...this.series.values()].flatMap((s) => thinned(s.points, 500).map(([x]) => x)))].sort((a, b) => a - b);
    const lookup = names.map((name) => new Map(this.series.get(name).points.map(([x, y]) => [x, y])));
    const head = `<tr><th>${this.xLabel}</th>${names.map((n) => `<th>${n.replace(/[<>&]/g, "")}</th>`).join("")}</tr>`;
    const body = xs.map((x) => `<tr><td>${x}</td>${lookup.map((m) => `<td>${m.has(x) ? label(m.get(x)) : ""}</td>`).join("")}</tr>`).join("");
    this.table.innerHTML = `<summary>Data as a table</summary><table class="chart-data"><thead>${head}</thead><tbody>${body}</tbody></table>`;
  }
}

// At most `limit` points, evenly spaced, always with the last one.
function thinned(points, limit = MAX_DRAWN) {
  if (points.length <= limit) return points;
  const step = points.length / limit;
  const kept = Array.from({ length: limit - 1 }, (_, i) => points[Math.floor(i * step)]);
  kept.push(points.at(-1));
  return kept;
}

// The point whose x is nearest `x` (points sorted by x): a binary search.
function nearest(points, x) {
  if (!points.length) return null;
  let low = 0, high = points.length - 1;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (points[mid][0] < x) low = mid + 1; else high = mid;
  }
  const before = points[Math.max(0, low - 1)];
  return Math.abs(before[0] - x) < Math.abs(points[low][0] - x) ? before : points[low];
}
