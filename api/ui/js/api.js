// The one fetch helper: sends the token, turns the API's {error, detail} into a thrown ApiError.
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail || error || `HTTP ${status}`);
    this.status = status;
    this.error = error;
    this.detail = detail || "";
  }
  // "field: message; other: message" → {field: message, ...} (validation details name their field)
  fields() {
    const found = {};
    for (const part of this.detail.split("; ")) {
      const match = part.match(/^([a-z_]+)(?:\.\d+)?: (.*)$/);
      if (match) found[match[1]] = match[2];
    }
    return found;
  }
}

const TOKEN_KEY = "finetune-token";
export const token = () => sessionStorage.getItem(TOKEN_KEY);

function authHeaders(extra = {}) {
  const value = token();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

let prompting = null;  // parallel requests that all got 401 share one prompt

function askForToken() {
  prompting ??= promptForToken().finally(() => { prompting = null; });
  return prompting;
}

// The token dialog: a labelled input; Escape or "Cancel" leaves the request failing with a clear message.
function promptForToken() {
  return new Promise((resolve, reject) => {
    const dialog = document.createElement("dialog");
    dialog.dataset.testid = "token-prompt";
    dialog.setAttribute("aria-labelledby", "token-title");
    dialog.innerHTML = `<form method="dialog"><p id="token-title"><strong>This service needs a token</strong></p>
      <label>API token <input name="token" type="password" autocomplete="off" required></label>
      <button value="cancel" class="secondary" formnovalidate data-testid="token-cancel">Cancel</button>
      <button value="use" data-testid="token-use">Use token</button></form>`;
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      const value = dialog.querySelector("input").value.trim();
      dialog.remove();
      if (dialog.returnValue === "use" && value) {
        sessionStorage.setItem(TOKEN_KEY, value);
        resolve();
      } else {
        reject(new ApiError(401, "Unauthorized", "no token given: this service needs one (reload the page to enter it)"));
      }
    });
    dialog.showModal();
  });
}

export async function request(path, { method = "GET", json, body, headers = {}, raw = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const init = { method, headers: authHeaders(headers) };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    } else if (body !== undefined) {
      init.body = body;
    }
    const response = await fetch(path, init);
    if (response.status === 401 && attempt < 3) {
      sessionStorage.removeItem(TOKEN_KEY);
      await askForToken();
      continue;
    }
    if (!response.ok) {
      let problem = {};
      try { problem = await response.json(); } catch { /* not JSON */ }
      throw new ApiError(response.status, problem.error, problem.detail);
    }
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }
}

// Images and downloads need the token too, so they are fetched, not linked.
export async function objectUrl(path) {
  const response = await request(path, { raw: true });
  return URL.createObjectURL(await response.blob());
}

// A download: a one-time link is asked for with the token (202 with Retry-After while the service
// builds the file: `onWait(seconds so far)`), then the browser saves the file straight from the
// server, with its own progress, never holding it in the page's memory.
export async function download(linkPath, onWait = () => {}) {
  const started = Date.now();
  let response;
  while ((response = await request(linkPath, { method: "POST", raw: true })).status === 202) {
    onWait(Math.round((Date.now() - started) / 1000));
    await new Promise((done) => setTimeout(done, 1000 * Number(response.headers.get("Retry-After") || 2)));
  }
  const link = await response.json();
  const anchor = document.createElement("a");
  anchor.href = link.url;
  anchor.download = link.filename;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  return link;
}

// Server-Sent Events through fetch (EventSource cannot send a header): calls onEvent(name, data)
// until the stream's `end` event. A dropped stream is picked up again after its last event
// (`Last-Event-ID`), so nothing is missed or repeated; an error answer (401, 404) ends it.
export async function followEvents(path, onEvent, signal) {
  let lastId = null;
  for (let failures = 0; !signal?.aborted; ) {
    try {
      const headers = { Accept: "text/event-stream", ...(lastId ? { "Last-Event-ID": lastId } : {}) };
      const response = await request(path, { raw: true, headers });
      failures = 0;
      const ended = await readEvents(response, signal, (name, data, id) => {
        if (id) lastId = id;
        onEvent(name, data);
      });
      if (ended) return;
    } catch (error) {
      if (error instanceof ApiError || ++failures > 30) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// True once the `end` event came; false when the stream closed before it.
async function readEvents(response, signal, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  signal?.addEventListener("abort", () => reader.cancel());
  while (true) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let name = "message", data = "", id = null;
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
        else if (line.startsWith("id:")) id = line.slice(3).trim();
      }
      if (data) onEvent(name, JSON.parse(data), id);
      if (name === "end") return true;
    }
  }
}

export function showMessage(text) {
  showNotice(text, true);
}

// A line above the page: a problem (red) or a plain notice; empty hides it.
export function showNotice(text, problem = false) {
  const box = document.getElementById("message");
  box.textContent = text;
  box.hidden = !text;
  box.classList.toggle("notice", !problem);
}

// A 401 on a path that does not go through `request` (an upload with a progress bar): ask for the
// token, as `request` does; resolves true when there is a new one to retry with.
export async function askAgainAfter401() {
  sessionStorage.removeItem(TOKEN_KEY);
  try {
    await askForToken();
    return true;
  } catch (error) {
    showMessage(error.message);
    return false;
  }
}

// Markup made by html`` is trusted when nested in another html``; every other value is escaped.
class Markup extends String {}

export const html = (strings, ...values) =>
  new Markup(strings.reduce((out, s, i) => out + s + (i < values.length ? escape(values[i]) : ""), ""));

export function escape(value) {
  if (value instanceof Markup) return String(value);
  if (Array.isArray(value)) return value.map(escape).join("");
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export const percent = (value) => (value == null ? "–" : `${(100 * value).toFixed(1)} %`);
export function duration(seconds) {
  if (seconds == null) return "–";
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
