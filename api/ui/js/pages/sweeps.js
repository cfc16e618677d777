// /ui/sweeps — every sweep, newest first: status, trials, best validation accuracy; it follows them while any runs.
import { html, percent, request } from "../api.js";
import { deleteSweep } from "./sweep.js";

const REFRESH_MS = 3000;

export async function render(root) {
  root.innerHTML = html`<h1>Sweeps</h1>
    <p class="muted">Start one with <code>POST /sweeps</code> or <code>finetune client sweep</code>.</p>
    <table data-testid="sweeps"><thead><tr><th>Sweep</th><th>Status</th><th>Trials</th><th>Varies</th>
      <th>Best val accuracy</th><th>Created</th><th></th></tr></thead><tbody></tbody></table>`;
  const body = root.querySelector("tbody");
  body.addEventListener("click", async (event) => {
    const id = event.target.closest("button[data-delete]")?.dataset.delete;
    if (id && (await deleteSweep(id)).length) body.querySelector(`tr[data-sweep="${id}"]`)?.remove();
  });
  const load = async () => {
    const { data } = await request("/sweeps?limit=100");
    body.innerHTML = data.map(row).join("") || `<tr><td colspan="7" class="muted">No sweeps yet.</td></tr>`;
    return data.some((sweep) => sweep.status === "running");
  };
  while ((await load()) && root.isConnected) await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
}

function row(sweep) {
  const best = sweep.trials.find((t) => t.job_id === sweep.best_job_id);
  const varies = Object.keys(sweep.grid ?? sweep.random?.space ?? {}).join(", ");
  const ended = sweep.trials.filter((t) => !["queued", "running"].includes(t.status)).length;
  return html`<tr data-sweep="${sweep.id}"><td><a href="/ui/sweeps/${sweep.id}">${sweep.id.slice(0, 8)}</a></td>
    <td><span class="status ${sweep.status}">${sweep.status}</span></td>
    <td>${ended} / ${sweep.trials.length}</td><td>${varies}</td><td>${percent(best?.best_val_accuracy)}</td>
    <td>${new Date(sweep.created_at).toLocaleString()}</td>
    <td><button class="secondary" data-delete="${sweep.id}" aria-label="delete sweep ${sweep.id.slice(0, 8)}">Delete</button></td></tr>`;
}
