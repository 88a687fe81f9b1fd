"""The Runs tab's display values from the evaluation service's own types: what a run was trained on, the deltas
table, the side-by-side answers (escaped, with the nearest training records to open) and the curve."""
from __future__ import annotations

from curation.services.evaluation import AnswerPair, MetricDelta, RunComparison, RunRow
from curation.ui import runs_views as views

RECIPE = {"method": "top", "weights": {"judge": 1.0}, "n": 3, "threshold": None, "minimum": None,
          "records_considered": 8, "name": "best3", "size": 3}


def run(job_id, recipe=None, records=16, scores=None):
    return RunRow(job_id, "demo", "tester/demo", "abc123", "best3" if recipe else "messages", recipe,
                  "/tmp/x/y/tiny", "lora", 1200, records, 12.0, "completed", "tester/m", "r1", 7,
                  scores or {})


def test_a_run_says_what_it_was_trained_on():
    assert views.trained_on(run(1)) == "everything (messages)"
    assert views.trained_on(run(2, RECIPE)) == "selection best3: the 3 records highest by judge, out of 8 records."
    assert views.trained_on(run(3, {"name": "gone", "missing": True})) == (
        "selection best3 (its recipe is no longer stored)")
    row = views.runs_frame([run(1, scores={"loss": 1.23456})]).iloc[0].tolist()
    assert row[:6] == [1, "demo", "abc123", "everything (messages)", "…/y/tiny", "lora"]
    assert row[10] == "1.235" and row[11] == "—"


def test_two_runs_side_by_side_escape_the_answers_and_link_the_nearest_records():
    comparison = RunComparison(run(1), run(2, RECIPE), [MetricDelta("loss", 2.0, 1.5, -0.5, "b")],
                               [AnswerPair("Name <b>it</b>.", "Fruit", "<script>x</script>", "Fruit", 0.0, 1.0,
                                           0.5, 1.0, 0.5, "judge")], shared_prompts=4)
    frame = views.deltas_frame(comparison)
    assert frame.iloc[0].tolist() == ["Test loss", "2", "1.5", "-0.5", "run 2"]
    shown = views.side_by_side_html(comparison, [[(12, 0.91), (3, 0.5)]])
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "Name &lt;b&gt;it&lt;/b&gt;." in shown
    assert 'data-open-record="12"' in shown and 'data-open-record="3"' in shown
    assert "4 test prompts answered by both runs; the 1 where they differ most" in shown


def test_the_curve_has_a_point_per_evaluated_run_by_what_it_was_trained_on():
    rows = [run(1, scores={"rouge_l": 0.2}), run(2, RECIPE, records=3, scores={"rouge_l": 0.3}), run(3)]
    figure = views.curve_figure(rows, "rouge_l", "Training records")
    assert [(t.name, list(t.x), list(t.y)) for t in figure.data] == [
        ("trained on a selection", [3], [0.3]), ("trained on everything", [16], [0.2])]
    assert views.curve_metrics(rows) == [("ROUGE-L", "rouge_l")]
