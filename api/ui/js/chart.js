// A small SVG line chart: several named series of [x, y] points, redrawn when they change.
const COLORS = ["#2f6fdb", "#e8710a", "#1e8e3e", "#c0392b", "#8e44ad", "#16a085", "#7f8c8d"];
const NS = "http://www.w3.org/2000/svg";

export class LineChart {
  constructor(container, { yLabel = "", xLabel = "step" } = {}) {
    this.container = container;
    this.yLabel = yLabel;
    this.xLabel = xLabel;
    this.series = new Map();
    this.svg = document.createElementNS(NS, "svg");
    this.svg.setAttribute("viewBox", "0 0 600 240");
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.legend = document.createElement("div");
    this.legend.className = "legend";
    container.append(this.svg, this.legend);
    this.render();
  }

  set(name, points, { dashed = false } = {}) {
    const color = this.series.get(name)?.color ?? COLORS[this.series.size % COLORS.length];
    this.series.set(name, { points, color, dashed });
    this.render();
  }

  add(name, point, options) {
    const points = this.series.get(name)?.points ?? [];
    points.push(point);
    this.set(name, points, options);
  }

  render() {
    const all = [...this.series.values()].flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
    this.svg.replaceChildren();
    this.svg.dataset.points = String(all.length);
    const [left, right, top, bottom] = [46, 590, 10, 212];
    const xs = all.map(([x]) => x), ys = all.map(([, y]) => y);
    const x0 = Math.min(0, ...xs), x1 = Math.max(1, ...xs);
    let y0 = Math.min(...ys, 0), y1 = Math.max(...ys, 1e-9);
    if (!all.length) { y0 = 0; y1 = 1; }
    const sx = (x) => left + ((x - x0) / (x1 - x0 || 1)) * (right - left);
    const sy = (y) => bottom - ((y - y0) / (y1 - y0 || 1)) * (bottom - top);
    const line = (x1_, y1_, x2, y2, color = "#d9dde5") => {
      const el = document.createElementNS(NS, "line");
      Object.entries({ x1: x1_, y1: y1_, x2, y2, stroke: color }).forEach(([k, v]) => el.setAttribute(k, v));
      this.svg.append(el);
    };
    const text = (x, y, value, anchor = "end") => {
      const el = document.createElementNS(NS, "text");
      Object.entries({ x, y, "font-size": 10, fill: "#667085", "text-anchor": anchor }).forEach(([k, v]) => el.setAttribute(k, v));
      el.textContent = value;
      this.svg.append(el);
    };
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      line(left, sy(y), right, sy(y));
      text(left - 4, sy(y) + 3, y.toPrecision(3));
    }
    text(right, 232, `${this.xLabel} ${x1}`);
    text(left, 232, this.yLabel, "start");
    for (const { points, color, dashed } of this.series.values()) {
      const shown = points.filter(([, y]) => Number.isFinite(y));
      const path = document.createElementNS(NS, "polyline");
      path.setAttribute("points", shown.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "));
      Object.entries({ fill: "none", stroke: color, "stroke-width": 2, "vector-effect": "non-scaling-stroke" })
        .forEach(([k, v]) => path.setAttribute(k, v));
      if (dashed) path.setAttribute("stroke-dasharray", "6 4");
      this.svg.append(path);
      if (shown.length === 1) {
        const dot = document.createElementNS(NS, "circle");
        Object.entries({ cx: sx(shown[0][0]), cy: sy(shown[0][1]), r: 3, fill: color }).forEach(([k, v]) => dot.setAttribute(k, v));
        this.svg.append(dot);
      }
    }
    this.legend.innerHTML = [...this.series.entries()]
      .map(([name, s]) => `<span style="color:${s.color}">━ ${name.replace(/[<>&]/g, "")}</span>`).join(" &nbsp; ");
  }
}
