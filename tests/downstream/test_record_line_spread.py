"""The terminal line of a record shows its uncertainty: few-shot's ± 95 % CI over episodes, detection's std over
seeds; a record without either prints its value alone."""

from __future__ import annotations

from fixtures.records import make_record

from mast_bench.downstream.contract import describe


def test_fewshot_line_shows_the_episode_interval() -> None:
    rec = make_record(task="fewshot", protocol="ericsson-logreg-5way5shot", value=40.4, ci95=2.6177, selected={},
                      selected_on="none")  # fmt: skip
    assert describe(rec) == "synthetic-shape ericsson-logreg-5way5shot top1 = 40.40 ± 2.62 (95 % CI)"


def test_detection_aggregate_line_shows_the_seed_std() -> None:
    rec = make_record(task="detection", dataset="voc2007", protocol="voc0712-c4", metric="box_AP50", value=82.41,
                      std=0.213, seeds=(0, 1, 2, 3, 4), selected={}, selected_on="none")  # fmt: skip
    assert describe(rec) == "voc2007 voc0712-c4 box_AP50 = 82.41 ± 0.21 (std over 5 seeds)"


def test_a_plain_record_keeps_its_selection_and_no_interval() -> None:
    assert describe(make_record()) == "synthetic-shape synthetic-linear top1 = 81.25 (C=0.1 selected on val)"
