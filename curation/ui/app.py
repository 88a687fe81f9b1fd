"""The Blocks: a top bar, then one tab per tab module (built-in and plug-in), wired to the page load."""
from __future__ import annotations

import importlib
import logging
import pkgutil
from pathlib import Path
from types import ModuleType

import gradio as gr

from curation.ui.context import AppContext
from curation.ui.safe import esc

log = logging.getLogger("instruct_studio.ui")
ASSETS = Path(__file__).parent / "assets"


def tab_modules() -> list[ModuleType]:
    """Every curation/ui/*_tab.py module with a build(ctx), in TAB_ORDER; a broken one is logged and skipped."""
    import curation.ui as package

    modules = []
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.endswith("_tab"):
            continue
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}")
        except Exception:  # one broken plug-in tab must not keep the annotators out
            log.exception("tab module %s failed to import; skipped", info.name)
            continue
        if callable(getattr(module, "build", None)) and getattr(module, "TAB_TITLE", None):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "TAB_ORDER", 100), m.__name__))


def build_app(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="Instruct Studio") as demo:
        with gr.Row(elem_classes=["topbar"]):
            gr.HTML('<div class="brand">Instruct Studio <span>instruction data, written and reviewed</span></div>')
            who = gr.HTML('<div class="who"></div>', elem_id="signed-in")
        ctx.open_request = gr.Textbox(visible=False, label="open request")
        role_tabs = []
        with gr.Tabs() as tabs:
            ctx.tabs = tabs
            for module in tab_modules():
                name = module.__name__.rsplit(".", 1)[-1]
                with gr.Tab(module.TAB_TITLE, id=name, elem_id=f"tab-{name}") as tab:
                    ctx.tab = tab
                    try:
                        module.build(ctx)
                    except Exception:
                        log.exception("tab %s failed to build", name)
                        gr.Markdown("This tab could not be built; the error was logged for the admin.")
                if getattr(module, "TAB_ROLES", None):
                    role_tabs.append((tab, {getattr(r, "value", r) for r in module.TAB_ROLES}))

        for state in ctx._browser_states:
            state.render()

        @ctx.friendly
        def signed_in(request: gr.Request):
            actor = ctx.actor(request)
            line = (f'<div class="who">Signed in as <b>{esc(actor.name)}</b> '
                    f'<span class="role">{esc(actor.role.value)}</span> · <a href="logout">Sign out</a></div>')
            shown = [gr.update(visible=actor.role.value == "admin" or actor.role.value in roles)
                     for _, roles in role_tabs]
            return (line, *shown)

        demo.load(signed_in, None, [who, *[tab for tab, _ in role_tabs]], api_visibility="private")
        for fn, inputs, outputs, then in ctx._loads:
            event = demo.load(fn, inputs, outputs, api_visibility="private", show_progress="hidden")
            if then is not None:
                event.then(*then, api_visibility="private", show_progress="hidden")
    return demo


def launch_options() -> dict:
    """The look and the keyboard shortcuts, given to Blocks.launch (Gradio 6 takes them there)."""
    return {
        # System fonts: the page must not load anything from elsewhere (no Google Fonts).
        "theme": gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                                font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],
                                font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]),
        "css": (ASSETS / "studio.css").read_text(encoding="utf-8"),
        "head": (ASSETS / "shortcuts.html").read_text(encoding="utf-8"),
    }
