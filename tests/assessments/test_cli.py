"""``yiyang score`` end to end through the real command line app."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.assessments.builders import best, points_totalling
from yiyang.assessments import INSTRUMENTS
from yiyang.assessments.scoring import BARTHEL_ITEMS, MORSE_ITEMS, PHQ9_ITEMS
from yiyang.cli import app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_scores_a_json_file_and_prints_the_result_as_json(runner, tmp_path):
    # given a Barthel form on disk
    form = tmp_path / "barthel.json"
    form.write_text(json.dumps({**best(BARTHEL_ITEMS), "stairs": 5}), encoding="utf-8")
    # when scored from the command line
    outcome = runner.invoke(app, ["score", "barthel", "--json", str(form)])
    # then the result is the same JSON the function returns
    assert outcome.exit_code == 0, outcome.output
    body = json.loads(outcome.stdout)
    assert body["instrument"] == "barthel"
    assert body["total"] == 95
    assert body["level"] == "mild"
    assert body["level_zh"] == "轻度依赖"


def test_reads_stdin_when_the_input_is_a_dash(runner):
    answers = {item.code: 0 for item in PHQ9_ITEMS} | {"self_harm": 2}
    outcome = runner.invoke(app, ["score", "phq9", "--json", "-"], input=json.dumps(answers))
    assert outcome.exit_code == 0, outcome.output
    body = json.loads(outcome.stdout)
    assert body["level"] == "none"
    assert [flag["code"] for flag in body["flags"]] == ["self_harm_risk"]


def test_bad_item_exits_2_with_a_json_error_and_no_result(runner):
    outcome = runner.invoke(
        app, ["score", "barthel", "--json", "-"], input=json.dumps({**best(BARTHEL_ITEMS), "feeding": 7})
    )
    assert outcome.exit_code == 2
    assert outcome.stdout == ""
    error = json.loads(outcome.stderr)
    assert error["code"] == "assessment.item.range"
    assert error["detail"]["item"] == "feeding"


@pytest.mark.parametrize(
    ("args", "stdin", "code"),
    [
        (["score", "barthel", "--json", "-"], "{not json", "assessment.input.json"),
        (["score", "barthel", "--json", "/nonexistent/form.json"], None, "assessment.input.file"),
        (["score", "katz", "--json", "-"], "{}", "assessment.instrument.unknown"),
        (["score", "barthel"], None, "assessment.input.usage"),
        (["score", "--json", "-"], "{}", "assessment.instrument.unknown"),  # "-" is read as the instrument
        (
            ["score", "morse", "--json", "-", "--option", "high_risk_cutoff=50"],
            "MORSE",
            "assessment.option.invalid",
        ),
        (["score", "morse", "--json", "-", "--option", "cutoff"], "MORSE", "assessment.option.format"),
    ],
)
def test_usage_and_input_errors_are_json_with_exit_2(runner, args, stdin, code):
    if stdin == "MORSE":
        stdin = json.dumps(points_totalling(MORSE_ITEMS, 45))
    outcome = runner.invoke(app, args, input=stdin)
    assert outcome.exit_code == 2
    assert json.loads(outcome.stderr)["code"] == code


def test_morse_cut_off_is_set_with_an_option(runner):
    form = json.dumps(points_totalling(MORSE_ITEMS, 45))
    default = runner.invoke(app, ["score", "morse", "--json", "-"], input=form)
    strict = runner.invoke(
        app, ["score", "morse", "--json", "-", "--option", "high_risk_cutoff=51"], input=form
    )
    assert json.loads(default.stdout)["level"] == "high"
    assert json.loads(strict.stdout)["level"] == "moderate"


def test_hyphenated_instrument_code_works(runner):
    answers = {
        "sex": "female",
        "age": 60,
        "sbp": 135,
        "bp_treated": False,
        "tc": 5.2,
        "hdl": 1.4,
        "waist": 80,
        "smoker": False,
        "diabetes": False,
        "north": True,
    }
    outcome = runner.invoke(app, ["score", "china-par", "--json", "-"], input=json.dumps(answers))
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["instrument"] == "china_par"


def test_list_json_describes_every_instrument_and_its_inputs(runner):
    outcome = runner.invoke(app, ["score", "--list", "--json"])
    assert outcome.exit_code == 0, outcome.output
    listing = json.loads(outcome.stdout)
    assert [entry["code"] for entry in listing] == list(INSTRUMENTS)
    barthel = next(entry for entry in listing if entry["code"] == "barthel")
    feeding = next(item for item in barthel["items"] if item["code"] == "feeding")
    assert feeding == {
        "code": "feeding",
        "label_zh": "进食",
        "label_en": "feeding",
        "kind": "points",
        "required": True,
        "allowed": [0, 5, 10],
    }
    morse = next(entry for entry in listing if entry["code"] == "morse")
    assert morse["options"][0]["choices"] == [45, 51]


def test_list_prints_a_table(runner):
    outcome = runner.invoke(app, ["score", "--list"])
    assert outcome.exit_code == 0, outcome.output
    for code in ("gbt42195", "barthel", "china_par"):
        assert code in outcome.stdout


def test_a_file_that_is_not_utf8_is_a_json_error_with_exit_2(runner, tmp_path):
    # given a Mini-Cog form saved as GBK, as a Chinese spreadsheet or editor may save it
    form = tmp_path / "minicog.json"
    form.write_bytes('{"word_recall": 3, "clock": 2, "备注": "正常"}'.encode("gbk"))
    # when scored from the file and from stdin
    from_file = runner.invoke(app, ["score", "minicog", "--json", str(form)])
    from_stdin = runner.invoke(app, ["score", "minicog", "--json", "-"], input=form.read_bytes())
    # then both are refused with the encoding named, not a traceback
    for outcome in (from_file, from_stdin):
        assert outcome.exit_code == 2, outcome.output
        assert json.loads(outcome.stderr)["code"] == "assessment.input.encoding"


def test_a_utf8_file_with_a_byte_order_mark_is_read(runner, tmp_path):
    form = tmp_path / "minicog.json"
    form.write_bytes(b"\xef\xbb\xbf" + json.dumps({"word_recall": 3, "clock": 2}).encode())
    outcome = runner.invoke(app, ["score", "minicog", "--json", str(form)])
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout)["level"] == "negative"


@pytest.mark.parametrize("option", ["code=1", "answers=1"])
def test_an_option_named_like_a_parameter_exits_2(runner, option):
    answers = json.dumps(points_totalling(MORSE_ITEMS, 45))
    outcome = runner.invoke(app, ["score", "morse", "--json", "-", "--option", option], input=answers)
    assert outcome.exit_code == 2, outcome.output
    assert json.loads(outcome.stderr)["code"] == "assessment.option.unknown"
