// The job form: every spec field with the API's own defaults (read from /openapi.json), and each
// 422 detail shown next to the field it names.
import { ApiError, escape, request } from "../api.js";

const LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"];

export async function specForm(container, datasetId) {
  const schema = (await request("/openapi.json")).components.schemas.JobCreate.properties;
  const field = (name, input) => `<label data-field="${name}">${name}${input}
    <span class="field-error" data-testid="error-${name}"></span></label>`;
  const value = (name) => escape(schema[name]?.default ?? "");
  const layers = (name) => `<span>${LAYERS.map((l) => `<label style="display:inline"><input type="checkbox"
    name="${name}" value="${l}"${(schema[name].default || []).includes(l) ? " checked" : ""}>${l}</label>`).join(" ")}</span>`;
  const number = (name, step) => `<input type="number" name="${name}" step="${step}" value="${value(name)}">`;
  const check = (name) => `<input type="checkbox" name="${name}"${schema[name].default ? " checked" : ""}>`;
  container.innerHTML = `<form class="spec" data-testid="job-form">
    ${field("train_layers", layers("train_layers"))}
    ${field("reinit_layers", layers("reinit_layers"))}
    ${field("weights", `<input type="text" name="weights" value="${value("weights")}">`)}
    ${field("optimizer", `<select name="optimizer"><option>sgd</option><option>adam</option></select>`)}
    ${field("learning_rate", number("learning_rate", "any"))}
    ${field("momentum", `<input type="number" name="momentum" step="any" placeholder="0.9 with sgd">`)}
    ${field("num_epochs", number("num_epochs", 1))}
    ${field("batch_size", number("batch_size", 1))}
    ${field("dropout_rate", number("dropout_rate", "any"))}
    ${field("early_stopping_patience", `<input type="number" name="early_stopping_patience" step="1" placeholder="off">`)}
    ${field("seed", number("seed", 1))}
    ${field("augment_flip", check("augment_flip"))}
    ${field("mixed_precision", check("mixed_precision"))}
    ${field("xla", check("xla"))}
    ${field("feature_cache", check("feature_cache"))}
    <div><button data-testid="launch">Launch the finetune</button>
      <p class="error" data-testid="form-error"></p></div></form>`;
  const form = container.querySelector("form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.querySelectorAll(".field-error, [data-testid=form-error]").forEach((el) => { el.textContent = ""; });
    const spec = { dataset_id: typeof datasetId === "function" ? datasetId() : datasetId };
    const data = new FormData(form);
    for (const name of ["train_layers", "reinit_layers"]) spec[name] = data.getAll(name);
    spec.weights = data.get("weights");
    spec.optimizer = data.get("optimizer");
    for (const name of ["learning_rate", "momentum", "num_epochs", "batch_size", "dropout_rate", "early_stopping_patience", "seed"]) {
      const raw = data.get(name);
      if (raw !== "" && raw !== null) spec[name] = Number(raw);
    }
    for (const name of ["augment_flip", "mixed_precision", "xla", "feature_cache"]) spec[name] = data.get(name) === "on";
    try {
      const job = await request("/jobs", { method: "POST", json: spec });
      location.href = `/ui/jobs/${job.id}`;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const fields = error.fields();
      let placed = false;
      for (const [name, message] of Object.entries(fields)) {
        const slot = form.querySelector(`[data-testid="error-${name}"]`);
        if (slot) { slot.textContent = message; placed = true; }
      }
      if (!placed) form.querySelector("[data-testid=form-error]").textContent = error.message;
    }
  });
}
