// /ui/compare?jobs=ID,ID,... — validation curves overlaid and the specs side by side.
import { escape, html, percent, request } from "../api.js";
import { LineChart } from "../chart.js";

export async function render(root) {
  const ids = (new URLSearchParams(location.search).get("jobs") || "").split(",").filter(Boolean);
  root.innerHTML = html`<h1>Compare ${ids.length} jobs</h1>
    <div class="row"><section><h2>Validation accuracy</h2><div class="chart" data-testid="compare-accuracy"></div></section>
      <section><h2>Validation loss</h2><div class="chart" data-testid="compare-loss"></div></section></div>
    <section><h2>Specs</h2><table data-testid="compare-specs"></table></section>`;
  const jobs = await Promise.all(ids.map((id) => request(`/jobs/${id}`)));
  const curves = await Promise.all(ids.map((id) => request(`/jobs/${id}/metrics?after_step=${2 ** 31 - 1}`)));
  const charts = validationCharts(root.querySelector("[data-testid=compare-accuracy]"),
    root.querySelector("[data-testid=compare-loss]"));
  jobs.forEach((job, i) => charts.show(job.id.slice(0, 8), curves[i].val));
  const keys = [...new Set(jobs.flatMap((job) => Object.keys(job.spec)))].sort();
  const cell = (value) => escape(JSON.stringify(value ?? null));
  root.querySelector("[data-testid=compare-specs]").innerHTML =
    `<thead><tr><th></th>${jobs.map((j) => `<th><a href="/ui/jobs/${j.id}">${j.id.slice(0, 8)}</a></th>`).join("")}</tr></thead><tbody>`
    + `<tr><th>status</th>${jobs.map((j) => `<td>${escape(j.status)}</td>`).join("")}</tr>`
    + `<tr><th>best val accuracy</th>${jobs.map((j) => `<td>${percent(j.best?.val_accuracy)}</td>`).join("")}</tr>`
    + keys.map((key) => {
      const values = jobs.map((j) => JSON.stringify(j.spec[key] ?? null));
      const differs = new Set(values).size > 1;
      return `<tr class="${differs ? "diff" : ""}" data-key="${escape(key)}"><th>${escape(key)}</th>${jobs.map((j) => `<td>${cell(j.spec[key])}</td>`).join("")}</tr>`;
    }).join("") + "</tbody>";
}

// Validation accuracy and loss per epoch, one named series per job (the sweep page uses it too).
export function validationCharts(accuracyBox, lossBox) {
  const accuracy = new LineChart(accuracyBox, { yLabel: "accuracy", xLabel: "epoch" });
  const loss = new LineChart(lossBox, { yLabel: "loss", xLabel: "epoch" });
  return {
    show(name, val) {
      accuracy.set(name, val.map((p) => [p.epoch, p.accuracy]));
      loss.set(name, val.map((p) => [p.epoch, p.loss]));
    },
  };
}
