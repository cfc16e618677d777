// Routes the fixed /ui/... paths to one page module each; every page reads the public JSON API.
import { showMessage, showNotice } from "./api.js";

const ROUTES = [
  [/^\/ui\/?$/, "jobs", () => import("./pages/jobs.js")],
  [/^\/ui\/jobs\/([0-9a-f]+)$/, "jobs", () => import("./pages/job.js")],
  [/^\/ui\/datasets\/?$/, "datasets", () => import("./pages/datasets.js")],
  [/^\/ui\/datasets\/([0-9a-f]+)$/, "datasets", () => import("./pages/dataset.js")],
  [/^\/ui\/new-job$/, "new-job", () => import("./pages/new_job.js")],
  [/^\/ui\/predict$/, "predict", () => import("./pages/predict.js")],
  [/^\/ui\/compare$/, "jobs", () => import("./pages/compare.js")],
  [/^\/ui\/sweeps\/?$/, "sweeps", () => import("./pages/sweeps.js")],
  [/^\/ui\/sweeps\/([0-9a-f]+)$/, "sweeps", () => import("./pages/sweep.js")],
];

async function start() {
  const root = document.getElementById("app");
  showNotice(sessionStorage.getItem("finetune-notice") ?? "");  // e.g. what a delete freed, before it navigated
  sessionStorage.removeItem("finetune-notice");
  const path = location.pathname;
  for (const [pattern, nav, load] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    document.querySelector(`nav a[data-nav="${nav}"]`)?.classList.add("active");
    const page = await load();
    try {
      await page.render(root, ...match.slice(1));
    } catch (error) {
      showMessage(error.message);
    }
    return;
  }
  root.innerHTML = `<h1>Not found</h1><p><a href="/ui/">All jobs</a></p>`;
}

start();
