import json

import pytest

from gasdesk.bot.nlu.evaluate import EvalReport, evaluate, format_report, run_eval_cli

pytestmark = pytest.mark.no_database  # pure computation: run once, in the SQLite pass


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


ROWS = [
    {"text": "你好", "intent": "greeting"},
    {"text": "厨房有股煤气味", "intent": "gas_leak"},
    {"text": "想装个报警器", "intent": "appointment_book", "slots": {"service_type": "报警器安装"}},
    {"text": "今天天气怎么样", "intent": "praise"},  # deliberately mislabelled: must show up as a confusion
]


def test_report_fields(tmp_path):
    report = evaluate(_write(tmp_path / "small.jsonl", ROWS))
    assert isinstance(report, EvalReport)
    assert report.total == 4
    assert report.accuracy == 0.75
    assert report.leak_recall == 1.0 and report.leak_support == 1
    assert report.slot_lines == 1 and report.slot_accuracy == 1.0
    assert report.per_intent["greeting"].support == 1 and report.per_intent["greeting"].recall == 1.0
    assert report.per_intent["praise"].recall == 0.0
    assert [(c.gold, c.predicted, c.count, c.example) for c in report.confusions] == [
        ("praise", "out_of_scope", 1, "今天天气怎么样")
    ]
    assert 0 < report.latency_p50_ms <= report.latency_p95_ms
    assert 0 <= report.baseline.accuracy <= 1
    assert report.baseline.leak_recall in (0.0, 1.0)


def test_format_report_is_readable(dev_report):
    text = format_report(dev_report)
    assert "intent accuracy" in text and "gas_leak recall" in text and "baseline" in text
    assert "appointment_book" in text and "p50" in text


def test_cli_exit_codes(tmp_path, capsys):
    assert run_eval_cli(str(_write(tmp_path / "ok.jsonl", ROWS))) == 0
    assert "75.0%" in capsys.readouterr().out

    assert run_eval_cli(str(tmp_path / "missing.jsonl")) == 2
    assert "no such file" in capsys.readouterr().err

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "你好", "intent": "greeting"}\n{not json\n', encoding="utf-8")
    assert run_eval_cli(str(bad)) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err

    unknown = _write(tmp_path / "unknown.jsonl", [{"text": "你好", "intent": "hello"}])
    assert run_eval_cli(str(unknown)) == 2
    assert "unknown intent" in capsys.readouterr().err


def test_cli_exits_zero_even_when_accuracy_is_low(tmp_path):
    wrong = [{"text": "你好", "intent": "complaint"}, {"text": "转人工", "intent": "praise"}]
    assert run_eval_cli(str(_write(tmp_path / "wrong.jsonl", wrong))) == 0
