"""The Diversity map in a real browser (issue 16): a curator opens it, is told in words while it is computed,
lassoes points and sees Browse list only those records; opened again, the map is read back, not recomputed."""
from __future__ import annotations

import json
import re

import pytest

from tests.e2e.test_browser import ARGS, ARTIFACTS, CHROMIUM, sign_in  # noqa: F401  (skips without chromium)
from tests.conftest import FIXTURES
from tests.ui_server import add_records, running_studio, seed

pytestmark = pytest.mark.browser
from playwright.sync_api import expect, sync_playwright  # noqa: E402

TOPICS = {k: v for k, v in json.loads((FIXTURES / "map_topics.json").read_text()).items() if not k.startswith("_")}
TEXTS = [text for texts in TOPICS.values() for text in texts]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    from curation.records import RecordDraft

    url = f"sqlite:///{tmp_path_factory.mktemp('map') / 'studio.db'}"
    seed(url)
    drafts = [RecordDraft(t, "", ["ok"], category=topic) for topic, texts in TOPICS.items() for t in texts]
    ids = add_records(url, drafts, by="ann", reason="test")
    with running_studio(url) as running:
        running.ids = ids
        yield running


def lasso_all(page) -> None:
    """Drag a lasso just inside the plot area's corners: every point is inside it."""
    area = page.locator("#diversity-map .nsewdrag").first.bounding_box()
    left, top = area["x"] + 3, area["y"] + 3
    right, bottom = area["x"] + area["width"] - 3, area["y"] + area["height"] - 3
    page.mouse.move(left, top)
    page.mouse.down()
    for x, y in ((right, top), (right, bottom), (left, bottom), (left, top + 1)):
        page.mouse.move(x, y, steps=12)
    page.mouse.up()


def test_lasso_on_the_map_lists_those_records_in_browse(studio, monkeypatch):
    from curation.ui import diversity_map

    monkeypatch.setattr(diversity_map, "WAIT_SECONDS", 0.0)  # the view answers at once, as it does at 52k records
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page, dialogs = sign_in(browser, studio, "cura")
        page.get_by_role("tab", name="Diversity").click()
        expect(page.locator("#diversity-dataset input")).to_have_value("demo", timeout=30_000)
        page.get_by_role("tab", name="Map", exact=True).click()
        page.locator("#diversity-coverage").click()
        summary = page.locator("#diversity-coverage-summary")
        expect(summary).to_contain_text(f"The map is being computed: {len(TEXTS)} records, about", timeout=30_000)
        expect(summary).to_contain_text(f"{len(TEXTS)} live records in", timeout=180_000)  # the timer brings it
        expect(summary).to_contain_text("laid out by UMAP")
        assert page.locator("#diversity-map .js-plotly-plot").evaluate("(plot) => plot.layout.dragmode") == "lasso"
        page.screenshot(path=str(ARTIFACTS / "map.png"), full_page=True)

        # A lasso around every point, then Browse
        lasso_all(page)
        expect(page.locator("#diversity-lasso-note")).to_contain_text(f"{len(TEXTS)} records inside the lasso",
                                                                      timeout=15_000)
        page.locator("#diversity-lasso-browse").click()
        expect(page.locator("#browse-only-note")).to_contain_text(
            f"Only the {len(TEXTS)} records selected on the map", timeout=30_000)
        expect(page.locator("#browse-info")).to_contain_text(f"of {len(TEXTS)} records", timeout=30_000)

        # Three chosen points, as plotly reports a lasso (plotly_selected with each point's customdata)
        chosen = studio.ids[:2] + studio.ids[-1:]
        page.get_by_role("tab", name="Diversity").click()
        page.evaluate("""(ids) => document.querySelector('#diversity-map .js-plotly-plot')
                           .emit('plotly_selected', {points: ids.map((id) => ({customdata: [id]}))})""", chosen)
        show = page.locator("#diversity-lasso-browse")
        expect(show).to_have_text("Show these 3 in Browse", timeout=15_000)
        show.click()
        expect(page.locator("#browse-only-note")).to_contain_text("Only the 3 records selected on the map",
                                                                  timeout=30_000)
        expect(page.locator("#browse-info")).to_contain_text("of 3 records", timeout=30_000)
        table = page.locator("#browse-table")
        for text in (TEXTS[0], TEXTS[1], TEXTS[-1]):
            expect(table.get_by_text(text).filter(visible=True).first).to_be_visible(timeout=15_000)
        expect(table.get_by_text(TEXTS[2]).filter(visible=True)).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "map-lasso-browse.png"), full_page=True)

        # Asked again: the stored map, not another build
        built = dict(diversity_map._builds)
        page.get_by_role("tab", name="Diversity").click()
        page.locator("#diversity-coverage").click()
        expect(summary).to_contain_text("kept until the records change", timeout=30_000)
        assert len(diversity_map._builds) == len(built)
        assert all(diversity_map._builds[key] is b and b.done.is_set() for key, b in built.items())
        browser.close()
    assert dialogs == []
