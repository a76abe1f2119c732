// Warns on the canvas about custom blocks (models/modular_blocks) that failed to load: the server lists them in
// GET /api/modular_diffusers/custom_blocks, and each also has an error node "<folder>: failed to load".
// Served at /extensions/<pack>/js/custom_blocks.js: three levels up is the server root, where scripts/ lives.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const EXTENSION_NAME = "ModularDiffusers.CustomBlocks";
const STATUS_ROUTE = "/modular_diffusers/custom_blocks";
const TOAST_LIFE_MS = 20000;

async function brokenCustomBlocks() {
  const response = await api.fetchApi(STATUS_ROUTE);
  if (!response.ok) return [];
  const status = await response.json();
  return (status?.entries ?? []).filter((entry) => entry.state === "broken");
}

function warn(broken) {
  const lines = broken.map((entry) => `${entry.folder}: ${entry.reason}`);
  const summary =
    broken.length === 1
      ? "Modular Diffusers: a custom block failed to load"
      : `Modular Diffusers: ${broken.length} custom blocks failed to load`;
  const detail = `${lines.join("\n")}\n(details: GET /api${STATUS_ROUTE}; fix the files and restart ComfyUI)`;
  console.warn(`${summary}\n${detail}`);
  app.extensionManager?.toast?.add({ severity: "warn", summary, detail, life: TOAST_LIFE_MS });
}

// With two copies of the pack installed, ComfyUI serves this file twice; the second copy stays out.
if (!app.extensions?.some((extension) => extension.name === EXTENSION_NAME)) app.registerExtension({
  name: EXTENSION_NAME,
  async setup() {
    try {
      const broken = await brokenCustomBlocks();
      if (broken.length) warn(broken);
    } catch (error) {
      console.debug("Modular Diffusers: custom blocks status unavailable", error); // never break the page
    }
  },
});
