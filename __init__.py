"""ComfyUI Modular Diffusers: Hugging Face Modular Diffusers blocks as ComfyUI nodes.

ComfyUI loads this package and calls `comfy_entrypoint`. Everything that needs ComfyUI is imported
inside it, so the package stays importable without a running ComfyUI (pytest, tools).
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import ModularDiffusersExtension

    return ModularDiffusersExtension()
