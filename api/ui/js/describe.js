// A name and a note, edited in place and saved with PATCH (jobs and datasets alike).
import { escape, request, showMessage } from "./api.js";

export function describeEditor(container, path, item, onSaved) {
  container.innerHTML = `<details data-testid="describe"><summary>Name and note</summary>
    <form class="describe"><label>Name <input name="name" maxlength="255" value="${escape(item.name ?? "")}"></label>
      <label>Note <textarea name="note" rows="2" maxlength="4000">${escape(item.note ?? "")}</textarea></label>
      <button data-testid="describe-save">Save</button></form></details>
    <p class="note" data-testid="note">${escape(item.note ?? "")}</p>`;
  container.querySelector("form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const changes = { name: form.get("name").trim() || null, note: form.get("note").trim() || null };
    try {
      const saved = await request(path, { method: "PATCH", json: changes });
      container.querySelector("[data-testid=note]").textContent = saved.note ?? "";
      container.querySelector("details").open = false;
      onSaved(saved);
    } catch (error) {
      showMessage(error.message);
    }
  });
}
