// /ui/new-job — pick a ready dataset, set the options, launch.
import { html, request } from "../api.js";
import { specForm } from "./spec_form.js";

export async function render(root) {
  const { data } = await request("/datasets?limit=500");
  const ready = data.filter((d) => d.status === "ready");
  root.innerHTML = html`<h1>New job</h1><section><label>Dataset <select data-testid="dataset-select"></select></label>
    </section><section id="form"></section>`;
  const select = root.querySelector("select");
  // name, size, date and id: two datasets with one name can be told apart
  select.innerHTML = ready.map((d) => html`<option value="${d.id}">${d.name} · ${d.num_images} images ·
    ${new Date(d.created_at).toLocaleString()} · ${d.id.slice(0, 8)}</option>`).join("")
    || `<option value="">no ready dataset: upload one first</option>`;
  await specForm(root.querySelector("#form"), () => select.value);
}
