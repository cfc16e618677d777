// /ui/datasets — upload a ZIP (with a progress bar) and see every dataset's status.
import { ApiError, askAgainAfter401, html, request, showMessage, token } from "../api.js";
import { bytes, deleteWithConfirmation } from "../delete.js";

export async function render(root) {
  root.innerHTML = html`<h1>Datasets</h1>
    <section><h2>Upload a ZIP</h2>
      <form data-testid="upload-form">
        <div class="row"><input type="file" name="file" accept=".zip,application/zip" required aria-label="dataset ZIP">
          <input type="text" name="name" placeholder="name (optional)">
          <label>val <input type="number" name="val_fraction" value="0.15" step="0.01" min="0.01" max="0.9"></label>
          <label>test <input type="number" name="test_fraction" value="0.15" step="0.01" min="0" max="0.9"></label>
          <button>Upload</button></div>
        <progress data-testid="upload-progress" max="1" value="0" hidden></progress>
        <p class="error" data-testid="upload-error"></p>
      </form>
      <p class="muted">One folder per class; or train/ val/ [test/] folders; or a <code>path label</code> index.</p>
    </section>
    <table data-testid="datasets"><thead><tr><th>Name</th><th>Status</th><th>Classes</th><th>Images</th>
      <th>Train / val / test</th><th>Rejected</th><th>Size</th><th>Created</th><th></th></tr></thead><tbody></tbody></table>`;
  root.querySelector("form").addEventListener("submit", (event) => {
    event.preventDefault();
    upload(event.target);
  });
  root.querySelector("tbody").addEventListener("click", async (event) => {
    const id = event.target.closest("button[data-delete]")?.dataset.delete;
    if (id && (await deleteDataset(id)).length) await list(root);
  });
  await list(root);
}

// The confirmation names what goes: the dataset's files, and the jobs trained on it (they stay).
export async function deleteDataset(id) {
  const [dataset, { data: jobs }] = await Promise.all([request(`/datasets/${id}`), request("/jobs?limit=500")]);
  const users = jobs.filter((job) => job.dataset_id === id);
  const active = users.filter((job) => ["queued", "running"].includes(job.status)).length;
  const details = `Its upload and prepared images go (${bytes(dataset.size_bytes)}), with its feature caches. `
    + (users.length ? `${users.length} job(s) trained on it keep their models${active ? `; ${active} still running must be cancelled first` : ""}.` : "No job uses it.");
  return deleteWithConfirmation({
    question: `Delete dataset ${dataset.name}?`, details, paths: [`/datasets/${id}`], freed: () => dataset.size_bytes,
  });
}

async function list(root) {
  const { data } = await request("/datasets?limit=500");
  root.querySelector("tbody").innerHTML = data.map((d) => html`<tr>
      <td><a href="/ui/datasets/${d.id}">${d.name}</a></td><td><span class="status ${d.status}">${d.status}</span></td>
      <td>${d.classes.join(", ")}</td><td>${d.num_images}</td>
      <td>${d.splits.train ?? 0} / ${d.splits.val ?? 0} / ${d.splits.test ?? 0}</td>
      <td>${d.rejected_count}</td><td>${bytes(d.size_bytes)}</td><td>${new Date(d.created_at).toLocaleString()}</td>
      <td><button class="secondary" data-delete="${d.id}" aria-label="delete dataset ${d.name}">Delete</button></td></tr>`).join("")
    || `<tr><td colspan="9" class="muted">No datasets yet.</td></tr>`;
}

function upload(form) {
  const bar = form.querySelector("progress"), error = form.querySelector("[data-testid=upload-error]");
  const body = new FormData(form);
  if (!body.get("name")) body.delete("name");
  const xhr = new XMLHttpRequest();  // fetch reports no upload progress; XHR does
  xhr.open("POST", "/datasets");
  if (token()) xhr.setRequestHeader("Authorization", `Bearer ${token()}`);
  bar.hidden = false;
  error.textContent = "";
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
  xhr.onload = () => {
    let reply = {};
    try { reply = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 201) {
      location.href = `/ui/datasets/${reply.id}`;
      return;
    }
    if (xhr.status === 401) {  // the same token prompt as every other request, then the upload again
      askAgainAfter401().then((again) => (again ? upload(form) : (bar.hidden = true)));
      return;
    }
    bar.hidden = true;
    error.textContent = new ApiError(xhr.status, reply.error, reply.detail).message;
  };
  xhr.onerror = () => showMessage("the upload failed: the service did not answer");
  xhr.send(body);
}
