// /ui/predict — a finished job or the ImageNet network; drop or pick images; top-k as bars.
import { html, percent, request } from "../api.js";

export async function render(root) {
  const { data: jobs } = await request("/jobs?status=succeeded&limit=200");
  root.innerHTML = html`<h1>Predict</h1><section>
    <label>Model <select data-testid="model-select"><option value="imagenet">ImageNet (pretrained, 1000 classes)</option></select></label>
    <label>Top <input type="number" name="top_k" value="5" min="1" max="20" style="width:4rem"></label>
    <div class="drop" data-testid="drop-zone">Drop images here, or <input type="file" data-testid="image-input" accept="image/*" multiple aria-label="images to classify"></div>
    <p class="error" data-testid="predict-error"></p></section>
    <div data-testid="predict-result"></div>`;
  const select = root.querySelector("select");
  select.insertAdjacentHTML("beforeend", jobs.map((j) => html`<option value="${j.id}">job ${j.id.slice(0, 8)}
    (${percent(j.best?.val_accuracy)} val)</option>`).join(""));
  const preselected = new URLSearchParams(location.search).get("job");
  if (preselected) select.value = preselected;
  const zone = root.querySelector(".drop");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); predict(root, [...e.dataTransfer.files]); });
  root.querySelector("[data-testid=image-input]").addEventListener("change", (e) => predict(root, [...e.target.files]));
}

async function predict(root, files) {
  const model = root.querySelector("select").value;
  const body = new FormData();
  files.forEach((file) => body.append("image", file, file.name));
  body.append(model === "imagenet" ? "model" : "job_id", model);
  body.append("top_k", root.querySelector("input[name=top_k]").value);
  const error = root.querySelector("[data-testid=predict-error]");
  const out = root.querySelector("[data-testid=predict-result]");
  error.textContent = "";
  try {
    const { predictions } = await request("/predict", { method: "POST", body });
    out.innerHTML = predictions.map((ranked, i) => html`<section><h2>${files[i].name}</h2><table>
      ${ranked.map((p) => html`<tr><td style="width:30%">${p.label}</td>
        <td><div class="bar" style="width:${(100 * p.probability).toFixed(1)}%"></div></td>
        <td style="width:6rem">${percent(p.probability)}</td></tr>`)}</table></section>`).join("");
  } catch (problem) {
    error.textContent = problem.message;
  }
}
