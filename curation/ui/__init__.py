"""The Gradio app: the only package (with app.py) that imports gradio.

`build_app(ctx)` in curation/ui/app.py assembles one `gr.Blocks` from tab modules. Built-in
tabs: Browse, Record, Task, Review, Overview, Admin. Other tabs plug in without touching
this package, through the contract below.

Tab module contract (e.g. curation/ui/diversity_tab.py, curation/ui/publish_tab.py)
----------------------------------------------------------------------------------
A module in this package whose name ends in `_tab` and that defines `build` is picked up
automatically (a module that fails to import is logged and skipped; the app still starts):

    TAB_TITLE = "Diversity"      # required: the tab's label
    TAB_ORDER = 60               # optional, default 100; built-ins use 10..50, Admin 90
    TAB_ROLES = ("curator",)     # optional: the tab is shown only to these roles (admins see every tab);
                                 # hiding is cosmetic, handlers still check roles themselves

    def build(ctx: AppContext) -> None:
        # Called inside `with gr.Tab(TAB_TITLE, id=<module name>):` in the app's Blocks.
        # Create components and wire listeners here; return nothing.
        ...

`ctx` is a `curation.ui.context.AppContext`:
  ctx.settings          curation.config.Settings
  ctx.engine            the SQLAlchemy engine (schema already migrated)
  ctx.session()         context manager: a Session that commits on success, rolls back on error
  ctx.actor(request)    the signed-in user as `curation.services.permissions.Actor(name, role)`;
                        take `request: gr.Request` as a handler parameter and pass it in.
                        Raises PermissionDenied when nobody is signed in.
  ctx.require(actor, *roles)   raises PermissionDenied unless actor.role is one of roles
                        (roles are db.models.Role values; admin always passes).
  ctx.friendly(fn)      decorator for handlers: PermissionDenied, NotFoundError, ConflictError,
                        ValueError and the other domain errors become a short gr.Error message;
                        anything else is logged and shown as one line, never a stack trace.
  ctx.datasets()        the dataset names, for dropdowns.
  ctx.on_load(fn, inputs, outputs, then=None)   run fn when the page loads (e.g. fill dropdowns),
                        then `then` = (fn, inputs, outputs) if given; registered as private listeners.
  ctx.browser_state(key)   a gr.BrowserState (localStorage) that survives reloads; use it instead of
                        creating one inside build (tabs mount lazily, so one made there reads None).
  ctx.open_request      a hidden Textbox that opens an item in an editor: return
                        curation.ui.context.open_item("record" | "task", ID) to [ctx.open_request, ctx.tabs].
  ctx.tab               the gr.Tab being built: `ctx.tab.select(fn, ...)` runs when a user opens it
                        (draw heavy content there rather than on page load).
  ctx.tabs              the app's gr.Tabs; tab ids are the module names ("browse_tab", "diversity_tab").

Rules every tab follows (checked by tests/test_ui_api.py for all tabs):
  * each public listener has an explicit api_name, prefixed with the tab ("diversity_refresh");
    every other listener passes api_visibility="private";
  * the handler authorizes first (ctx.actor + ctx.require or a service that checks), then
    calls plain domain code in curation/ with a session from ctx.session();
  * user text is shown as text: use curation.ui.safe.text_markdown(text) for Markdown built
    from user input, or html.escape for gr.HTML; never gr.HTML of raw user text.
"""
