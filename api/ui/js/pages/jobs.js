// /ui/ — every job, newest first: status, dataset, progress with ETA, best validation accuracy.
import { duration, escape, html, percent, request } from "../api.js";
import { bytes, deleteWithConfirmation } from "../delete.js";

const STATES = ["", "queued", "running", "succeeded", "failed", "cancelled"];
const REFRESH_MS = 3000;

export async function render(root) {
  const params = new URLSearchParams(location.search);
  const status = params.get("status") || "";
  root.innerHTML = html`<h1>Jobs</h1>
    <div class="row" style="align-items:center">
      <label>Status <select data-testid="status-filter">${""}</select></label>
      <div style="text-align:right"><button data-testid="compare-button" disabled>Compare selected</button>
        <button class="secondary" data-testid="delete-selected" disabled>Delete selected</button></div>
    </div>
    <table data-testid="jobs"><thead><tr><th></th><th>Job</th><th>Status</th><th>Dataset</th><th>Created</th>
      <th>Progress</th><th>Best val accuracy</th></tr></thead><tbody></tbody></table>`;
  const filter = root.querySelector("select");
  filter.innerHTML = STATES.map((s) => `<option value="${s}"${s === status ? " selected" : ""}>${s || "all"}</option>`).join("");
  filter.addEventListener("change", () => {
    location.search = filter.value ? `?status=${filter.value}` : "";
  });
  const query = status ? `?status=${status}&limit=200` : "?limit=200";
  const body = root.querySelector("tbody");
  let jobs = [];
  const load = async () => {
    const [page, { data: datasets }] = await Promise.all([request(`/jobs${query}`), request("/datasets?limit=500")]);
    jobs = page.data;
    const names = Object.fromEntries(datasets.map((d) => [d.id, d.name]));
    const ticked = new Set(picked());
    body.innerHTML = jobs.map((job) => row(job, names, ticked.has(job.id))).join("")
      || `<tr><td colspan="7" class="muted">No jobs yet: <a href="/ui/new-job">start one</a>.</td></tr>`;
    return jobs.some((job) => ["queued", "running"].includes(job.status));
  };
  const compare = root.querySelector("[data-testid=compare-button]");
  function picked() { return [...body.querySelectorAll("input:checked")].map((box) => box.value); }
  const remove = root.querySelector("[data-testid=delete-selected]");
  body.addEventListener("change", () => {
    compare.disabled = picked().length < 2;
    remove.disabled = picked().length < 1;
  });
  compare.addEventListener("click", () => { location.href = `/ui/compare?jobs=${picked().map(escape).join(",")}`; });
  remove.addEventListener("click", async () => {
    const chosen = jobs.filter((job) => picked().includes(job.id));
    const size = (ids) => chosen.filter((job) => ids.includes(`/jobs/${job.id}`)).reduce((sum, job) => sum + job.size_bytes, 0);
    const running = chosen.filter((job) => ["queued", "running"].includes(job.status)).length;
    const deleted = await deleteWithConfirmation({
      question: `Delete ${chosen.length} job(s)?`,
      details: `Their models, checkpoints, metrics and TensorBoard files go: ${bytes(size(chosen.map((job) => `/jobs/${job.id}`)))}.`
        + (running ? ` ${running} still queued or running must be cancelled first and will stay.` : ""),
      paths: chosen.map((job) => `/jobs/${job.id}`),
      freed: size,
    });
    deleted.forEach((path) => body.querySelector(`tr[data-job="${path.split("/").pop()}"]`)?.remove());
  });
  // the list follows the jobs while any is queued or running
  while ((await load()) && root.isConnected) await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
}

function row(job, names, ticked) {
  const p = job.progress;
  const eta = job.status === "running" ? ` · ETA ${duration(p.eta_seconds)}` : "";
  const sweep = job.sweep_id ? html` <a class="tag" href="/ui/sweeps/${job.sweep_id}">sweep ${job.sweep_id.slice(0, 8)}</a>` : "";
  return html`<tr data-job="${job.id}">
    <td><input type="checkbox" value="${job.id}" aria-label="select job ${job.id.slice(0, 8)}"${ticked ? html` checked` : ""}></td>
    <td><a href="/ui/jobs/${job.id}">${job.name ?? job.id.slice(0, 8)}</a>${sweep}</td>
    <td><span class="status ${job.status}">${job.status}</span></td>
    <td>${names[job.dataset_id] ?? "(deleted)"}</td>
    <td>${new Date(job.created_at).toLocaleString()}</td>
    <td><progress max="1" value="${p.fraction ?? 0}" aria-label="progress"></progress>
      <span class="muted">${p.phase ?? ""}${eta}</span></td>
    <td>${percent(job.best?.val_accuracy)}</td></tr>`;
}
