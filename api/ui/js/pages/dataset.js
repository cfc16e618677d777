// /ui/datasets/{id} — classes, split counts, rejected files, thumbnails per class, and the job form.
import { escape, html, objectUrl, request } from "../api.js";
import { describeEditor } from "../describe.js";
import { deleteDataset } from "./datasets.js";
import { specForm } from "./spec_form.js";

const PAGE = 24;

export async function render(root, id) {
  let dataset = await request(`/datasets/${id}`);
  root.innerHTML = html`<h1>Dataset <span data-testid="dataset-name">${dataset.name}</span></h1><div id="describe"></div>
    <section><span class="status ${dataset.status}" data-testid="dataset-status">${dataset.status}</span>
      <span class="muted" data-testid="dataset-summary"></span>
      <button class="secondary" data-testid="delete-dataset">Delete dataset</button>
      <p class="error">${dataset.error ?? ""}</p></section>
    <section><h2>Images</h2><label>Class <select data-testid="class-select"></select></label>
      <button class="secondary" data-testid="more-thumbnails">More</button>
      <div class="thumbs" data-testid="thumbnails"></div></section>
    <section><h2>Rejected files</h2><ul data-testid="rejected"></ul></section>
    <section><h2>Launch a finetune on it</h2><div id="form"></div></section>`;
  describeEditor(root.querySelector("#describe"), `/datasets/${id}`, dataset, (saved) => {
    root.querySelector("[data-testid=dataset-name]").textContent = saved.name;
  });
  root.querySelector("[data-testid=delete-dataset]").addEventListener("click", async () => {
    if ((await deleteDataset(id)).length) {
      sessionStorage.setItem("finetune-notice", document.getElementById("message").textContent);
      location.href = "/ui/datasets";
    }
  });
  while (dataset.status === "preparing") {  // show it as it becomes ready
    await new Promise((resolve) => setTimeout(resolve, 1000));
    dataset = await request(`/datasets/${id}`);
  }
  root.querySelector("[data-testid=dataset-status]").textContent = dataset.status;
  root.querySelector("[data-testid=dataset-status]").className = `status ${dataset.status}`;
  root.querySelector(".error").textContent = dataset.error ?? "";
  const s = dataset.splits;
  root.querySelector("[data-testid=dataset-summary]").textContent =
    `${dataset.num_images} images · classes: ${dataset.classes.join(", ")} · train ${s.train ?? 0}, val ${s.val ?? 0}, test ${s.test ?? 0}`;
  root.querySelector("[data-testid=rejected]").innerHTML =
    dataset.rejected.map((r) => html`<li><code>${r.path}</code>: ${r.reason}</li>`).join("") || "<li class=muted>none</li>";
  if (dataset.status !== "ready") return;
  const select = root.querySelector("[data-testid=class-select]");
  select.innerHTML = dataset.classes.map((c) => `<option>${escape(c)}</option>`).join("");
  const thumbs = root.querySelector("[data-testid=thumbnails]");
  let offset = 0;
  const more = async () => {
    const page = await request(`/datasets/${id}/images?class=${encodeURIComponent(select.value)}&offset=${offset}&limit=${PAGE}`);
    offset += page.data.length;
    root.querySelector("[data-testid=more-thumbnails]").disabled = offset >= page.count;
    for (const image of page.data) {
      const figure = document.createElement("figure");
      figure.innerHTML = html`<img alt="${image.path}"><figcaption>${image.split} · ${image.path.split("/").pop()}</figcaption>`;
      thumbs.append(figure);
      figure.querySelector("img").src = await objectUrl(`/datasets/${id}/images/${image.index}`);
    }
  };
  select.addEventListener("change", () => { offset = 0; thumbs.replaceChildren(); more(); });
  root.querySelector("[data-testid=more-thumbnails]").addEventListener("click", more);
  await Promise.all([more(), specForm(root.querySelector("#form"), id)]);
}
