// The job form, generated from the API's own schema (JobCreate in /openapi.json): every option in
// its group, with its label, default, range and one line of help; deprecated options left out;
// each 422 shown next to the field it names.
import { ApiError, escape, request } from "../api.js";

export const GROUPS = [
  ["data", "Data"], ["layers", "Layers"], ["optimisation", "Optimisation"],
  ["schedule", "Schedule"], ["regularisation", "Regularisation"], ["hardware", "Hardware"],
];

export async function jobSchema() {
  return (await request("/openapi.json")).components.schemas.JobCreate;
}

// The options the form shows, in schema order: those with a group, none deprecated.
export function formFields(schema) {
  return Object.entries(schema.properties).filter(([, prop]) => prop["x-group"] && !prop.deprecated);
}

const valueSchema = (prop) => prop.anyOf?.find((option) => option.type !== "null") ?? prop;
const nullable = (prop) => Boolean(prop.anyOf?.some((option) => option.type === "null"));

function kind(prop) {
  const value = valueSchema(prop);
  if (value.type === "array") return "layers";
  if (value.enum) return "choice";
  if (value.type === "boolean") return "check";
  if (value.type === "integer" || value.type === "number") return "number";
  return "text";
}

function range(prop) {
  const v = valueSchema(prop);
  const low = v.minimum ?? v.exclusiveMinimum;
  const high = v.maximum ?? v.exclusiveMaximum;
  if (low === undefined && high === undefined) return "";
  const from = low === undefined ? "" : `${v.exclusiveMinimum !== undefined ? "above" : "from"} ${low}`;
  const to = high === undefined ? "" : `${v.exclusiveMaximum !== undefined ? "below" : "up to"} ${high}`;
  return [from, to].filter(Boolean).join(", ");
}

function shownDefault(prop) {
  if (prop.default === null || prop.default === undefined) return nullable(prop) ? "empty: off or automatic" : "";
  if (Array.isArray(prop.default)) return `default ${prop.default.join(", ")}`;
  if (typeof prop.default === "boolean") return `default ${prop.default ? "on" : "off"}`;
  return `default ${prop.default}`;
}

function input(name, prop) {
  const id = `field-${name}`;
  const value = valueSchema(prop);
  switch (kind(prop)) {
    case "layers":
      return `<span class="choices">${value.items.enum.map((layer) => `<label class="inline"><input type="checkbox"
        name="${name}" value="${layer}"${(prop.default || []).includes(layer) ? " checked" : ""}>${layer}</label>`).join("")}</span>`;
    case "choice":
      return `<select id="${id}" name="${name}">${value.enum.map((option) =>
        `<option${option === prop.default ? " selected" : ""}>${escape(option)}</option>`).join("")}</select>`;
    case "check":
      return `<input type="checkbox" id="${id}" name="${name}"${prop.default ? " checked" : ""}>`;
    case "number": {
      const low = value.minimum ?? value.exclusiveMinimum;
      const high = value.maximum ?? value.exclusiveMaximum;
      return `<input type="number" id="${id}" name="${name}" step="${value.type === "integer" ? 1 : "any"}"
        ${low !== undefined ? `min="${low}"` : ""} ${high !== undefined ? `max="${high}"` : ""}
        value="${escape(prop.default ?? "")}">`;
    }
    default:
      return `<input type="text" id="${id}" name="${name}" value="${escape(prop.default ?? "")}">`;
  }
}

// `name` in a description is code, as in the API's docs.
const withCode = (text) => escape(text).replace(/`([^`]+)`/g, "<code>$1</code>");

function fieldMarkup(name, prop) {
  const help = [prop.description, shownDefault(prop), range(prop)].filter(Boolean).join(" · ");
  const title = escape(prop.title || name);
  const error = `<span class="field-error" role="alert" data-testid="error-${name}"></span>`;
  const helpLine = `<small class="help" id="help-${name}">${withCode(help)}</small>`;
  if (kind(prop) === "layers") {
    return `<fieldset class="field" data-field="${name}" aria-describedby="help-${name}"><legend>${title}</legend>
      ${input(name, prop)} ${helpLine} ${error}</fieldset>`;
  }
  return `<div class="field" data-field="${name}"><label for="field-${name}">${title}</label>
    ${input(name, prop).replace("<input", `<input aria-describedby="help-${name}"`)} ${helpLine} ${error}</div>`;
}

// The spec the form holds, and the fields whose input is not a number.
function readSpec(form, fields) {
  const spec = {}, wrong = {};
  for (const [name, prop] of fields) {
    const element = form.elements[name];
    const type = kind(prop);
    if (type === "layers") spec[name] = [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((box) => box.value);
    else if (type === "check") spec[name] = element.checked;
    else if (type === "number") {
      if (element.validity.badInput || (element.value !== "" && !Number.isFinite(Number(element.value)))) {
        wrong[name] = "must be a number";
      } else if (element.value !== "") spec[name] = Number(element.value);
      else if (nullable(prop)) spec[name] = null;
    } else spec[name] = element.value === "" && nullable(prop) ? null : element.value;
  }
  return { spec, wrong };
}

// A message from the API placed next to its field: "field: message", or a rule that starts with a field's name.
function placeErrors(form, error, names) {
  const byField = error.fields();
  if (!Object.keys(byField).length) {
    const named = names.find((name) => error.detail.startsWith(`${name} `));
    if (named) byField[named] = error.detail;
  }
  let placed = false;
  for (const [name, message] of Object.entries(byField)) {
    const slot = form.querySelector(`[data-testid="error-${name}"]`);
    if (slot) { slot.textContent = message; placed = true; }
  }
  if (!placed) form.querySelector("[data-testid=form-error]").textContent = error.message;
}

export async function specForm(container, datasetId) {
  const fields = formFields(await jobSchema());
  const groups = GROUPS.map(([group, heading]) => {
    const inside = fields.filter(([, prop]) => prop["x-group"] === group);
    return inside.length ? `<fieldset class="group" data-group="${group}"><legend>${heading}</legend>
      ${inside.map(([name, prop]) => fieldMarkup(name, prop)).join("")}</fieldset>` : "";
  });
  container.innerHTML = `<form class="spec" data-testid="job-form" novalidate>${groups.join("")}
    <div><button data-testid="launch">Launch the finetune</button>
      <p class="error" role="alert" data-testid="form-error"></p></div></form>`;
  const form = container.querySelector("form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    form.querySelectorAll(".field-error, [data-testid=form-error]").forEach((el) => { el.textContent = ""; });
    const { spec, wrong } = readSpec(form, fields);
    if (Object.keys(wrong).length) {
      placeErrors(form, new ApiError(422, "InvalidInput", Object.entries(wrong).map(([n, m]) => `${n}: ${m}`).join("; ")), []);
      return;
    }
    spec.dataset_id = typeof datasetId === "function" ? datasetId() : datasetId;
    try {
      const job = await request("/jobs", { method: "POST", json: spec });
      location.href = `/ui/jobs/${job.id}`;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      placeErrors(form, error, fields.map(([name]) => name));
    }
  });
}
