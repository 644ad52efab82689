"""``yiyang score``: score an instrument from a JSON file or stdin, or list the instruments."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from yiyang.assessments.instruments import INSTRUMENTS, get_instrument, score
from yiyang.errors import DomainError, Invalid

USAGE_ERROR = 2


def score_command(
    instrument: str | None = typer.Argument(
        None,
        metavar="INSTRUMENT",
        help="instrument code, e.g. barthel, phq9, gbt42195, china_par (see --list)",
    ),
    source: str | None = typer.Argument(
        None, metavar="INPUT", help="JSON file of item code -> answer, or - for stdin"
    ),
    as_json: bool = typer.Option(
        False, "--json", help="the input is JSON (the only format); with --list: print the list as JSON"
    ),
    list_instruments: bool = typer.Option(False, "--list", help="list the instruments and their inputs"),
    option: list[str] = typer.Option(
        [], "--option", help="instrument setting KEY=VALUE, e.g. high_risk_cutoff=51 for morse"
    ),
) -> None:
    """评估量表计分 Score an assessment instrument: yiyang score INSTRUMENT --json INPUT.

    Prints the result as JSON; bad input prints a JSON error and exits with status 2.
    """
    # ``--json`` is a flag followed by the INPUT argument, so ``--list --json`` also parses.
    if list_instruments:
        if as_json:
            _print_json([instrument.describe() for instrument in INSTRUMENTS.values()])
        else:
            _print_table()
        return
    try:
        if not instrument:
            raise Invalid(
                "assessment.input.usage",
                "请给出量表代码和 --json 输入，或用 --list 查看量表 "
                "(give an instrument code and --json INPUT, or --list to see the instruments)",
            )
        get_instrument(instrument)
        if not source:
            raise Invalid(
                "assessment.input.usage",
                "请用 --json 给出答案文件，或用 --json - 从标准输入读取 "
                "(give the answers with --json FILE, or --json - to read stdin)",
            )
        answers = _read_answers(source)
        scored = score(instrument, answers, **_parse_options(option))
    except DomainError as error:
        typer.echo(json.dumps(error.as_json(), ensure_ascii=False, indent=2), err=True)
        raise typer.Exit(USAGE_ERROR) from None
    _print_json(scored.model_dump(mode="json"))


def _read_answers(source: str) -> Any:
    if source == "-":
        data = sys.stdin.buffer.read()  # bytes: the locale's decoder would fail or garble a GBK file
        where = "stdin"
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            raise Invalid(
                "assessment.input.file",
                f"无法读取输入文件 {source} (cannot read input file {source}: {error.strerror or error})",
                path=source,
            ) from None
        where = source
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:  # e.g. a GBK file saved by a spreadsheet
        raise Invalid(
            "assessment.input.encoding",
            f"{where} 不是 UTF-8 编码，请另存为 UTF-8 ({where} is not UTF-8 at byte {error.start}; save it as UTF-8)",
            path=where,
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise Invalid(
            "assessment.input.json",
            f"{where} 不是有效的 JSON：第 {error.lineno} 行第 {error.colno} 列 "
            f"({where} is not valid JSON: line {error.lineno}, column {error.colno}: {error.msg})",
            line=error.lineno,
            column=error.colno,
        ) from None


def _parse_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise Invalid(
                "assessment.option.format",
                f"设置项应写作 KEY=VALUE，收到 {pair} (options are written KEY=VALUE; got '{pair}')",
                option=pair,
            )
        options[name.strip()] = value.strip()
    return options


def _print_json(body: Any) -> None:
    typer.echo(json.dumps(body, ensure_ascii=False, indent=2))


def _print_table() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="评估量表 (assessment instruments)", show_lines=True)
    table.add_column("code", no_wrap=True)
    table.add_column("名称 (name)")
    table.add_column("输入 (inputs): code = allowed")
    for instrument in INSTRUMENTS.values():
        inputs = []
        for item in instrument.items:
            optional = "" if item.required else " (optional)"
            inputs.append(f"{item.code} = {item.allowed_en()}{optional}")
        for opt in instrument.options:
            choices = "/".join(map(str, opt.choices))
            inputs.append(f"--option {opt.code}={choices} (default {opt.default})")
        table.add_row(instrument.code, f"{instrument.name_zh}\n{instrument.name_en}", "\n".join(inputs))
    Console().print(table)
