// Shows the text summary that the MDiff_ShowState output node returns (ui.text) in a read-only box on the node.
// The 1.32.x frontend does not display an output node's ui.text by itself (only for its own PreviewAny node).
// Served at /extensions/<pack>/js/show_state.js: three levels up is the server root, where scripts/app.js lives.
import { app } from "../../../scripts/app.js";

const NODE_TYPE = "MDiff_ShowState";
const WIDGET_NAME = "state_text";
const MIN_WIDTH = 400;

function stateWidget(node) {
  const existing = node.widgets?.find((w) => w.name === WIDGET_NAME);
  if (existing) return existing;
  const textarea = document.createElement("textarea");
  textarea.className = "comfy-multiline-input";
  textarea.readOnly = true;
  textarea.spellcheck = false;
  textarea.placeholder = "Run the workflow to see the pipeline state";
  const widget = node.addDOMWidget(WIDGET_NAME, "customtext", textarea, {
    getValue: () => textarea.value,
    setValue: (value) => {
      textarea.value = value ?? "";
    },
    serialize: false, // options.serialize: not an input of the prompt
  });
  widget.serialize = false; // not saved in the workflow's widgets_values
  widget.inputEl = textarea;
  widget.options.minNodeSize = [MIN_WIDTH, 160];
  return widget;
}

// Grow (never shrink) the node so that `lines` lines of text fit without scrolling.
function fitNode(node, lines) {
  const height = Math.max(node.size[1], 60 + 16 * lines);
  node.setSize([Math.max(node.size[0], MIN_WIDTH), height]);
}

const EXTENSION_NAME = "ModularDiffusers.ShowState";

// With two copies of the pack installed, ComfyUI serves this file twice; the second copy stays out.
if (!app.extensions?.some((extension) => extension.name === EXTENSION_NAME)) app.registerExtension({
  name: EXTENSION_NAME,
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_TYPE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      stateWidget(this);
      fitNode(this, 6);
      return result;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const result = onExecuted?.apply(this, arguments);
      showText(this, message?.text);
      return result;
    };
  },
  // Outputs restored without an execution (a reloaded page, a workflow tab switched back to, a run
  // loaded from the queue): newer frontends hand them over here instead of calling onExecuted.
  onNodeOutputsUpdated(nodeOutputs) {
    for (const [executionId, output] of Object.entries(nodeOutputs ?? {})) {
      if (!output || !("text" in output) || executionId.includes(":")) continue; // not in a subgraph
      const node = app.graph?.getNodeById(Number(executionId));
      if (node?.type === NODE_TYPE) showText(node, output.text);
    }
  },
});

function showText(node, text) {
  const value = Array.isArray(text) ? text.join("\n") : String(text ?? "");
  stateWidget(node).value = value;
  fitNode(node, value.split("\n").length);
  node.setDirtyCanvas?.(true, true);
}
