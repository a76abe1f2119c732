// Saved canvas workflows keep loading after a node's schema changes (adapters/versions.py explains it).
// A node with earlier shapes has a version; it is stamped on every such node created here
// (properties.mdiff_schema_version). When a workflow loads, a node saved at an older version (no
// stamp: version 1) becomes that version's deprecated node, which has exactly the saved widgets and
// slots and runs the current node. The table comes from the pack's schema_versions route.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const ROUTE = "/modular_diffusers/schema_versions";
const EXTENSION_NAME = "ModularDiffusers.SchemaVersions";
let table = null;

async function versions() {
  if (table === null) {
    try {
      const response = await api.fetchApi(ROUTE);
      table = response.ok ? await response.json() : { nodes: {} };
    } catch (error) {
      console.warn(`${EXTENSION_NAME}: ${ROUTE} unavailable`, error);
      table = { nodes: {} };
    }
  }
  return table;
}

// The nodes of a workflow file: the top graph's and every subgraph definition's.
function savedNodes(graphData) {
  const nodes = [...(graphData?.nodes ?? [])];
  for (const subgraph of graphData?.definitions?.subgraphs ?? []) nodes.push(...(subgraph?.nodes ?? []));
  return nodes;
}

// With two copies of the pack installed, ComfyUI serves this file twice; the second copy stays out.
if (!app.extensions?.some((extension) => extension.name === EXTENSION_NAME)) app.registerExtension({
  name: EXTENSION_NAME,
  async setup() {
    await versions();
  },
  // Called with the workflow file before the frontend looks for missing node types and builds nodes.
  async beforeConfigureGraph(graphData) {
    const { property, nodes } = await versions();
    for (const node of savedNodes(graphData)) {
      const entry = nodes?.[node?.type];
      if (!entry) continue;
      const saved = Number(node.properties?.[property] ?? 1);
      const older = entry.older?.[String(saved)];
      if (saved < entry.version && older) {
        console.info(`${EXTENSION_NAME}: node ${node.id} was saved with version ${saved} of ${node.type}: loaded as ${older}`);
        node.type = older;
      }
    }
  },
  nodeCreated(node) {
    const entry = table?.nodes?.[node.comfyClass ?? node.type];
    if (!entry) return;
    node.properties ??= {};
    node.properties[table.property] = entry.version;
  },
});
