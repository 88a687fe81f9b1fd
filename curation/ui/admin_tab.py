"""Admin: users and their roles, and datasets."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from curation.services import admin
from curation.services.permissions import authorize
from curation.ui.context import AppContext

TAB_TITLE = "Admin"
TAB_ORDER = 90
TAB_ROLES = ("admin",)
ROLES = ["annotator", "curator", "admin"]


def build(ctx: AppContext) -> dict:
    with gr.Row():
        with gr.Column():
            gr.Markdown("#### Users")
            users = gr.Dataframe(value=pd.DataFrame(columns=["Name", "Role", "Since"]), interactive=False,
                                 elem_id="admin-users")
            with gr.Group():
                with gr.Row():
                    user_name = gr.Textbox(label="User name", elem_id="admin-user-name")
                    role = gr.Dropdown(ROLES, value="annotator", label="Role", elem_id="admin-user-role")
                password = gr.Textbox(label="Password (new users)", type="password", elem_id="admin-user-password",
                                      info="At least 8 characters. Give it to the user privately.")
                with gr.Row():
                    add_user_btn = gr.Button("Add user", variant="primary")
                    set_role_btn = gr.Button("Change role")
        with gr.Column():
            gr.Markdown("#### Datasets")
            datasets = gr.Dataframe(value=pd.DataFrame(columns=["Name", "Description", "License", "Language"]),
                                    interactive=False, elem_id="admin-datasets")
            with gr.Group():
                with gr.Row():
                    dataset_name = gr.Textbox(label="Dataset name", elem_id="admin-dataset-name")
                    language = gr.Textbox(label="Language", placeholder="e.g. en")
                description = gr.Textbox(label="Description", lines=2)
                license_ = gr.Textbox(label="License", placeholder="e.g. CC-BY-4.0")
                add_dataset_btn = gr.Button("Create dataset", variant="primary")

    def tables():
        with ctx.session() as session:
            people = pd.DataFrame([[u.name, getattr(u.role, "value", u.role), f"{u.created_at:%Y-%m-%d}"]
                                   for u in admin.list_users(session)], columns=["Name", "Role", "Since"])
            sets = pd.DataFrame([[d.name, d.description, d.license or "", d.language or ""]
                                 for d in admin.list_datasets(session)],
                                columns=["Name", "Description", "License", "Language"])
        return people, sets

    @ctx.friendly
    def admin_tables(request: gr.Request):
        """The users and the datasets (admins)."""
        authorize(ctx.actor(request), "manage")
        return tables()

    @ctx.friendly
    def admin_add_user(name, role, password, request: gr.Request):
        """Add a user with a role and a password (admins)."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            admin.admin_add_user(session, actor, name, role, password)
        gr.Info(f"User {name} added.")
        return (*tables(), "")

    @ctx.friendly
    def admin_set_role(name, role, request: gr.Request):
        """Change a user's role (admins)."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            admin.admin_set_role(session, actor, name, role)
        gr.Info(f"{name} is now {role}.")
        return tables()

    @ctx.friendly
    def admin_create_dataset(name, description, license, language, request: gr.Request):
        """Create a dataset (admins)."""
        actor = ctx.actor(request)
        with ctx.session() as session:
            admin.create_dataset(session, actor, name, description, license, language)
        gr.Info(f"Dataset {name} created.")
        return tables()

    add_user_btn.click(admin_add_user, [user_name, role, password], [users, datasets, password],
                       api_name="admin_add_user")
    set_role_btn.click(admin_set_role, [user_name, role], [users, datasets], api_name="admin_set_role")
    add_dataset_btn.click(admin_create_dataset, [dataset_name, description, license_, language], [users, datasets],
                          api_name="admin_create_dataset")

    @ctx.friendly
    def on_load(request: gr.Request):
        if ctx.actor(request).role.value != "admin":
            return gr.skip(), gr.skip()
        return tables()

    ctx.on_load(on_load, None, [users, datasets])
    return {}
