"""Opening an item from another tab: the request names the editor and the id, and a repeat still opens."""
from curation.ui.context import open_item, requested_item


def test_an_open_request_reaches_only_its_editor_and_repeats_are_changes():
    first, tabs = open_item("task", "7")
    again, _ = open_item("task", 7)
    assert tabs.selected == "task_tab"
    assert requested_item(first, "task") == requested_item(again, "task") == 7
    assert first != again
    assert requested_item(first, "record") is None
    assert requested_item("", "record") is None and requested_item(None, "task") is None
