// Deleting from the pages: a confirmation that says what goes, then the freed space shown.
import { html, request, showNotice } from "./api.js";

export function bytes(count) {
  if (!count) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  const power = Math.min(Math.floor(Math.log10(count) / 3), units.length - 1);
  return `${(count / 1000 ** power).toFixed(power ? 1 : 0)} ${units[power]}`;
}

// A modal question; resolves true for "Delete", false for "Keep" or Escape.
export function confirmDialog(question, details, action = "Delete") {
  return new Promise((resolve) => {
    const dialog = document.createElement("dialog");
    dialog.dataset.testid = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-question");
    dialog.innerHTML = html`<form method="dialog"><p id="confirm-question"><strong>${question}</strong></p>
      <p data-testid="confirm-details">${details}</p>
      <button value="keep" class="secondary" data-testid="confirm-keep">Keep</button>
      <button value="go" data-testid="confirm-go">${action}</button></form>`;
    document.body.append(dialog);
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "go");
    });
    dialog.showModal();
    dialog.querySelector("[data-testid=confirm-keep]").focus();
  });
}

// Delete each path after one confirmation; resolves with the paths deleted. A refusal (a running
// job, a dataset in use) is said in words and the others still go.
export async function deleteWithConfirmation({ question, details, paths, freed }) {
  if (!(await confirmDialog(question, details))) return [];
  const deleted = [], refused = [];
  for (const path of paths) {
    try {
      await request(path, { method: "DELETE" });
      deleted.push(path);
    } catch (error) {
      refused.push(error.message);
    }
  }
  const done = deleted.length ? `Deleted ${deleted.length} of ${paths.length}; ${bytes(freed(deleted))} freed.` : "";
  showNotice([done, ...refused].filter(Boolean).join(" "), refused.length > 0);
  return deleted;
}
