// /ui/sweeps/{id} — the trials as a sortable table (best marked) and their validation curves
// overlaid; refreshed every two seconds while trials run.
import { ApiError, escape, html, percent, request, showMessage } from "../api.js";
import { bytes, deleteWithConfirmation } from "../delete.js";
import { validationCharts } from "./compare.js";

const REFRESH_MS = 2000;

export async function render(root, sweepId) {
  root.innerHTML = html`<h1>Sweep <span data-testid="sweep-id">${sweepId.slice(0, 8)}</span>
      <span class="status" data-testid="sweep-status"></span></h1>
    <p><span data-testid="sweep-summary"></span>
      <button data-testid="sweep-cancel" hidden>Cancel every trial</button>
      <button data-testid="sweep-compare">Compare in the job view</button>
      <button class="secondary" data-testid="delete-sweep">Delete sweep</button></p>
    <section><h2>Trials</h2><table data-testid="trials"><thead></thead><tbody></tbody></table></section>
    <div class="row"><section><h2>Validation accuracy</h2><div class="chart" data-testid="sweep-accuracy"></div></section>
      <section><h2>Validation loss</h2><div class="chart" data-testid="sweep-loss"></div></section></div>`;
  const charts = validationCharts(root.querySelector("[data-testid=sweep-accuracy]"),
    root.querySelector("[data-testid=sweep-loss]"));
  const state = { sweep: null, sortKey: "best_val_accuracy", descending: true, epochs: {} };
  root.querySelector("[data-testid=sweep-cancel]").addEventListener("click", async () => {
    try {
      draw(root, state, await request(`/sweeps/${sweepId}/cancel`, { method: "POST" }));
    } catch (error) {
      showMessage(error instanceof ApiError ? error.detail : error.message);
    }
  });
  root.querySelector("[data-testid=delete-sweep]").addEventListener("click", async () => {
    if ((await deleteSweep(sweepId)).length) {
      sessionStorage.setItem("finetune-notice", document.getElementById("message").textContent);
      location.href = "/ui/sweeps";
    }
  });
  root.querySelector("[data-testid=sweep-compare]").addEventListener("click", () => {
    location.href = `/ui/compare?jobs=${state.sweep.trials.map((t) => t.job_id).join(",")}`;
  });
  root.querySelector("thead").addEventListener("click", (event) => {
    const key = event.target.closest("th")?.dataset.sort;
    if (!key) return;
    state.descending = state.sortKey === key ? !state.descending : key.startsWith("best_val_accuracy");
    state.sortKey = key;
    draw(root, state, state.sweep);
  });
  for (;;) {
    const sweep = await request(`/sweeps/${sweepId}`);
    draw(root, state, sweep);
    await updateCurves(sweep, state, charts);
    if (sweep.status !== "running" || !root.isConnected) return;
    await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
  }
}

async function updateCurves(sweep, state, charts) {
  // only trials with a new best epoch or a changed status are read again
  const changed = sweep.trials.filter((t) => state.epochs[t.job_id] !== `${t.status}:${t.best_epoch}`);
  await Promise.all(changed.map(async (trial) => {
    const { val } = await request(`/jobs/${trial.job_id}/metrics?after_step=${2 ** 31 - 1}`);
    state.epochs[trial.job_id] = `${trial.status}:${trial.best_epoch}`;
    charts.show(trial.job_id.slice(0, 8), val);
  }));
}

function columns(sweep) {
  const params = [...new Set(sweep.trials.flatMap((t) => Object.keys(t.params)))];
  return [
    ["job_id", "Trial"], ["status", "Status"], ...params.map((p) => [`params.${p}`, p]),
    ["best_val_accuracy", "Best val accuracy"], ["best_val_loss", "Best val loss"], ["best_epoch", "Epoch"],
    ["fraction", "Progress"],
  ];
}

function value(trial, key) {
  return key.startsWith("params.") ? trial.params[key.slice(7)] : trial[key];
}

function draw(root, state, sweep) {
  state.sweep = sweep;
  const status = root.querySelector("[data-testid=sweep-status]");
  status.className = `status ${sweep.status}`;
  status.textContent = sweep.status;
  const ended = sweep.trials.filter((t) => !["queued", "running"].includes(t.status)).length;
  root.querySelector("[data-testid=sweep-summary]").textContent =
    `${ended} of ${sweep.trials.length} trials ended` + (sweep.best_job_id ? `; best ${sweep.best_job_id.slice(0, 8)}` : "");
  root.querySelector("[data-testid=sweep-cancel]").hidden = sweep.status !== "running";
  const cols = columns(sweep);
  root.querySelector("thead").innerHTML = "<tr>" + cols.map(([key, label]) => {
    const sorted = key === state.sortKey;
    const arrow = sorted ? (state.descending ? " ▼" : " ▲") : "";
    const order = sorted ? (state.descending ? "descending" : "ascending") : "none";
    return `<th data-sort="${escape(key)}" class="sortable" aria-sort="${order}"><button type="button" class="sort"
      >${escape(label)}${arrow}</button></th>`;
  }).join("") + "</tr>";
  const sign = state.descending ? -1 : 1;
  // equal accuracies rank by loss, lower first, as the server picks the best trial
  const loss = (t) => value(t, "best_val_loss") ?? Infinity;
  const tie = state.sortKey === "best_val_accuracy" ? (a, b) => loss(b) - loss(a) : () => 0;
  const rows = [...sweep.trials].sort((a, b) => {
    const [x, y] = [value(a, state.sortKey), value(b, state.sortKey)];
    if (x == null || y == null) return (x == null) - (y == null);  // empty cells last
    return (x < y ? -1 : x > y ? 1 : tie(a, b)) * sign || 0;
  });
  root.querySelector("tbody").innerHTML = rows.map((t) => {
    const cells = cols.map(([key]) => {
      const v = value(t, key);
      if (key === "job_id") return html`<td><a href="/ui/jobs/${v}">${v.slice(0, 8)}</a></td>`;
      if (key === "status") return html`<td><span class="status ${v}">${v}</span></td>`;
      if (key === "best_val_accuracy") return `<td>${percent(v)}</td>`;
      if (key === "best_val_loss") return `<td>${v == null ? "–" : v.toFixed(4)}</td>`;
      if (key === "fraction") return `<td><progress max="1" value="${v}"></progress></td>`;
      return `<td>${escape(v == null ? "–" : typeof v === "number" ? +v.toPrecision(4) : JSON.stringify(v))}</td>`;
    }).join("");
    const best = t.job_id === sweep.best_job_id ? " best" : "";
    return `<tr data-job="${escape(t.job_id)}" class="trial${best}">${cells}</tr>`;
  }).join("");
}

// All or nothing: every trial with its files, refused while one runs.
export async function deleteSweep(id) {
  const { data: trials } = await request(`/jobs?sweep_id=${id}&limit=500`);
  const size = trials.reduce((sum, job) => sum + job.size_bytes, 0);
  const running = trials.filter((job) => ["queued", "running"].includes(job.status)).length;
  return deleteWithConfirmation({
    question: `Delete sweep ${id.slice(0, 8)} and its ${trials.length} trial(s)?`,
    details: `Every trial's model, checkpoints, metrics and TensorBoard files go: ${bytes(size)}.`
      + (running ? ` ${running} trial(s) still run: cancel the sweep first.` : ""),
    paths: [`/sweeps/${id}`],
    freed: () => size,
  });
}
