// /ui/jobs/{id} — status, progress, live curves, per-class metrics, confusion matrix,
// misclassified images, the spec, and the actions.
import { download, duration, escape, followEvents, html, objectUrl, percent, request, showMessage, showNotice } from "../api.js";
import { LineChart } from "../chart.js";
import { bytes, deleteWithConfirmation } from "../delete.js";
import { describeEditor } from "../describe.js";

const ENDED = ["succeeded", "failed", "cancelled"];
const report = (error) => showMessage(error.message);

export async function render(root, id) {
  let job = await request(`/jobs/${id}`);
  const sweep = job.sweep_id
    ? html`<p data-testid="job-sweep">Trial of <a href="/ui/sweeps/${job.sweep_id}">sweep ${job.sweep_id.slice(0, 8)}</a>:
        ${Object.entries(job.sweep_params ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")}</p>`
    : "";
  root.innerHTML = html`<h1><span data-testid="job-name">${job.name ?? `Job ${id.slice(0, 8)}`}</span>
    <span class="status" data-testid="job-status"></span></h1>${sweep}<div id="describe"></div>
    <p class="error" data-testid="job-error"></p>
    <section><progress data-testid="job-progress" max="1" value="0"></progress>
      <div class="muted" data-testid="progress-text"></div>
      <p><button data-testid="cancel" class="secondary">Cancel</button> <button data-testid="resume" class="secondary">Resume</button>
        <button data-testid="download-model" class="secondary">Download model</button>
        <select data-testid="model-format" aria-label="model format"><option value="savedmodel">SavedModel</option>
          <option value="onnx">ONNX</option><option value="tflite">TFLite</option></select>
        <button data-testid="download-tensorboard" class="secondary">TensorBoard files</button>
        <button data-testid="delete-job" class="secondary">Delete job</button></p></section>
    <div class="row"><section><h2>Loss</h2><div class="chart" data-testid="loss-chart"></div></section>
      <section><h2>Accuracy</h2><div class="chart" data-testid="accuracy-chart"></div></section></div>
    <section><h2>Per class (latest epoch)</h2><table data-testid="per-class"><thead><tr><th>Class</th>
      <th>Precision</th><th>Recall</th><th>Support</th></tr></thead><tbody></tbody></table></section>
    <section><h2>Confusion matrix</h2><label>Epoch <select data-testid="matrix-epoch"></select></label>
      <p class="muted">rows: true class · columns: predicted</p><div id="matrix"></div></section>
    <section><h2>Misclassified images of the best epoch</h2><div class="thumbs" data-testid="misclassified"></div></section>
    <section><h2>Spec</h2><pre data-testid="spec"></pre></section>`;
  describeEditor(root.querySelector("#describe"), `/jobs/${id}`, job, (saved) => {
    root.querySelector("[data-testid=job-name]").textContent = saved.name ?? `Job ${id.slice(0, 8)}`;
  });
  const classes = job.classes ?? [];  // kept with the job: its dataset may be gone
  const loss = new LineChart(root.querySelector("[data-testid=loss-chart]"), { yLabel: "loss" });
  const accuracy = new LineChart(root.querySelector("[data-testid=accuracy-chart]"), { yLabel: "accuracy" });
  const epochs = [];
  const stepsPerEpoch = () => job.progress.steps_per_epoch || 1;
  const addTrain = (p) => {
    loss.add("train loss", [p.step, p.loss]);
    accuracy.add("train accuracy", [p.step, p.accuracy]);
  };
  const addVal = (p) => {
    epochs.push(p);
    loss.add("validation loss", [p.epoch * stepsPerEpoch(), p.loss], { dashed: true });
    accuracy.add("validation accuracy", [p.epoch * stepsPerEpoch(), p.accuracy], { dashed: true });
    perClass(root, p);
    const select = root.querySelector("[data-testid=matrix-epoch]");
    select.insertAdjacentHTML("beforeend", `<option value="${p.epoch}" selected>${p.epoch}</option>`);
  };
  const show = () => header(root, job);
  show();
  root.querySelector("[data-testid=spec]").textContent = JSON.stringify(job.spec, null, 2);
  root.querySelector("[data-testid=matrix-epoch]").addEventListener("change", () => matrix(root, id, classes).catch(report));
  actions(root, id, () => job, async () => { job = await request(`/jobs/${id}`); show(); });

  const done = async () => {
    job = await request(`/jobs/${id}`);
    show();
    await Promise.all([matrix(root, id, classes), misclassified(root, id, job.dataset_id)]);
  };
  if (ENDED.includes(job.status)) {  // a finished job: its curves in one read
    let after = 0, more = true;
    while (more) {
      const page = await request(`/jobs/${id}/metrics?after_step=${after}&after_epoch=${epochs.length ? epochs.at(-1).epoch : 0}`);
      page.train.forEach(addTrain);
      page.val.forEach(addVal);
      after = page.train.length ? page.train.at(-1).step : after;
      more = page.more;
    }
    await done();
    return;
  }
  followEvents(`/jobs/${id}/events`, async (name, data) => {
    if (name === "train") addTrain(data);
    else if (name === "val") {
      addVal(data);
      matrix(root, id, classes).catch(report);  // the new epoch is selected: its matrix, as it ends
      misclassified(root, id, job.dataset_id).catch(report);
    }
    else if (name === "status") { job = { ...job, status: data.status, progress: data.progress }; show(); }
    else if (name === "end") await done();
  }).catch((error) => showMessage(`live updates stopped: ${error.message}`));
}

function header(root, job) {
  const status = root.querySelector("[data-testid=job-status]");
  status.textContent = job.status;
  status.className = `status ${job.status}`;
  root.querySelector("[data-testid=job-error]").textContent = job.error ?? "";
  const p = job.progress;
  root.querySelector("[data-testid=job-progress]").value = p.fraction ?? 0;
  const parts = [p.phase && `phase ${p.phase}`];
  if (p.phase === "features" && p.phase_total) parts.push(`${p.phase_done} of ${p.phase_total} images`);
  if (p.epoch) parts.push(`epoch ${p.epoch} of ${p.num_epochs}`, `step ${p.step}`);
  if (p.images_per_second) parts.push(`${Math.round(p.images_per_second)} images/s`);
  if (job.status === "running") parts.push(`ETA ${duration(p.eta_seconds)}`);
  if (job.best) parts.push(`best epoch ${job.best.epoch}: ${percent(job.best.val_accuracy)}`);
  if (job.test) parts.push(`test ${percent(job.test.accuracy)}`);
  root.querySelector("[data-testid=progress-text]").textContent = parts.filter(Boolean).join(" · ");
  root.querySelector("[data-testid=cancel]").disabled = !["queued", "running"].includes(job.status);
  root.querySelector("[data-testid=resume]").disabled = !["cancelled", "failed"].includes(job.status);
  root.querySelector("[data-testid=download-model]").disabled = job.status !== "succeeded";
  root.querySelector("[data-testid=delete-job]").disabled = ["queued", "running"].includes(job.status);
}

function actions(root, id, current, refresh) {
  const act = (testid, work) => root.querySelector(`[data-testid=${testid}]`).addEventListener("click", async () => {
    try { await work(); await refresh(); } catch (error) { showMessage(error.message); }
  });
  act("cancel", () => request(`/jobs/${id}/cancel`, { method: "POST" }));
  act("resume", async () => { await request(`/jobs/${id}/resume`, { method: "POST" }); location.reload(); });
  const saving = async (linkPath, what) => {
    const converting = (seconds) => showNotice(`Preparing the ${what}… ${seconds} s (a conversion takes up to a minute)`);
    const link = await download(linkPath, converting);
    showNotice(`Saving ${link.filename}: your browser shows its progress.`);
  };
  act("download-model", () => {
    const format = root.querySelector("[data-testid=model-format]").value;
    return saving(`/jobs/${id}/model/link?format=${format}`, `${format} model`);
  });
  act("download-tensorboard", () => saving(`/jobs/${id}/tensorboard/link`, "TensorBoard files"));
  act("delete-job", async () => {
    const size = current().size_bytes;
    const deleted = await deleteWithConfirmation({
      question: `Delete job ${id.slice(0, 8)}?`,
      details: `Its model, checkpoints, metrics and TensorBoard files go: ${bytes(size)}.`,
      paths: [`/jobs/${id}`],
      freed: () => size,
    });
    if (deleted.length) {
      sessionStorage.setItem("finetune-notice", document.getElementById("message").textContent);
      location.href = "/ui/";
    }
  });
}

function perClass(root, point) {
  root.querySelector("[data-testid=per-class] tbody").innerHTML = point.per_class.map((c) => html`<tr>
    <td>${c.class}</td><td>${percent(c.precision)}</td><td>${percent(c.recall)}</td><td>${c.support}</td></tr>`).join("");
}

const matrices = new Map();

async function matrix(root, id, classes) {
  const epoch = Number(root.querySelector("[data-testid=matrix-epoch]").value);
  if (!epoch) return;
  if (!matrices.has(epoch)) {
    const page = await request(`/jobs/${id}/metrics?after_step=${2 ** 31 - 1}&after_epoch=${epoch - 1}&confusion_matrix=true`);
    for (const p of page.val) matrices.set(p.epoch, p.confusion_matrix);
  }
  const counts = matrices.get(epoch) ?? [];
  const peak = Math.max(1, ...counts.flat());
  const name = (i) => escape(classes[i] ?? i);
  root.querySelector("#matrix").innerHTML = `<table class="matrix" data-testid="confusion-matrix">
    <thead><tr><th></th>${counts.map((_, j) => `<th>${name(j)}</th>`).join("")}</tr></thead>
    <tbody>${counts.map((row, i) => `<tr><th>${name(i)}</th>${row.map((n) =>
      `<td style="background: rgba(47,111,219,${(0.08 + 0.85 * n / peak).toFixed(2)}); color: ${n / peak > 0.6 ? "#fff" : "inherit"}">${n}</td>`).join("")}</tr>`).join("")}
    </tbody></table>`;
}

async function misclassified(root, id, datasetId) {
  const box = root.querySelector("[data-testid=misclassified]");
  if (!datasetId) {
    box.innerHTML = `<p class="muted">The dataset was deleted: its images are gone with it.</p>`;
    return;
  }
  // Each new best epoch and the job's end redraw this; only the latest call draws, or two calls
  // interleaving their awaits would leave both calls' images in the box.
  const call = (box.dataset.call = String(Number(box.dataset.call || 0) + 1));
  const pages = await Promise.all(["val", "test"].map((split) =>
    request(`/jobs/${id}/predictions?split=${split}&wrong_only=true&limit=48`).then((p) => p.data.map((d) => ({ ...d, split })))));
  const figures = await Promise.all(pages.flat().map(async (item) => {
    const figure = document.createElement("figure");
    figure.innerHTML = html`<img alt="image ${item.index}"><figcaption>${item.split}: true <b>${item.label}</b>,
      predicted <b>${item.predicted}</b> (${percent(item.probability)})</figcaption>`;
    figure.querySelector("img").src = await objectUrl(`/datasets/${datasetId}/images/${item.index}`);
    return figure;
  }));
  if (box.dataset.call !== call) {
    figures.forEach((figure) => URL.revokeObjectURL(figure.querySelector("img").src));
    return;
  }
  box.replaceChildren(...figures);
  if (!figures.length) box.innerHTML = `<p class="muted">none so far</p>`;
}
