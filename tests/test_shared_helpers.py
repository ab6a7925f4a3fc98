"""Helpers written once and shared: the agents' rendering pieces, the engagement field list, the CLI loader."""
from __future__ import annotations

import ast
import sys
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from agents.base import AGENT_NAMES
from agents.common.rendering import as_json, subject_label, with_data_rule
from agents.lead_scoring import Engagement as ContextEngagement
from agents.learning.features import ENGAGEMENT_FEATURES
from agents.learning.features import Engagement as LearnedEngagement
from agents.llm.fence import SYSTEM_DATA_RULE
from agents.registry import get_agent
from crm_core.cli.plugins import plugin_parser, run_command

ROOT = Path(__file__).resolve().parent.parent
AGENT_FILES = sorted((ROOT / "agents").glob("*/__init__.py"))
AGENT_PACKAGES = [p for p in AGENT_FILES if p.parent.name in AGENT_NAMES]


# -- rendering --------------------------------------------------------------------------------------
def test_as_json_is_one_sorted_line_that_keeps_non_ascii_and_writes_what_json_cannot_as_text():
    from datetime import date

    assert as_json({"b": 1, "a": "Zoë", "d": date(2026, 1, 2)}) == '{"a": "Zoë", "b": 1, "d": "2026-01-02"}'


def test_subject_label_names_the_record_and_falls_back_to_noun_and_id_within_80_characters():
    assert subject_label("  Acme renewal ", "deal", 7) == "Acme renewal"
    assert subject_label(None, "contact", 12) == "contact 12"
    assert subject_label("   ", "deal", 3) == "deal 3"
    assert subject_label("x" * 120, "deal", 1) == "x" * 80


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_every_agents_prompt_is_its_instructions_then_the_data_rule(name):
    system = get_agent(name).prompt.system
    assert system.endswith("\n" + SYSTEM_DATA_RULE)
    assert with_data_rule(system[: -len(SYSTEM_DATA_RULE) - 1]) == system


def _functions(tree: ast.AST) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]


@pytest.mark.parametrize("path", AGENT_PACKAGES + sorted((ROOT / "agents" / "meeting").glob("*.py")), ids=str)
def test_no_agent_module_keeps_its_own_copy_or_imports_the_provider_package_inside_a_function(path):
    tree = ast.parse(path.read_text())
    own = {f.name for f in _functions(tree)} & {"_json", "_system"}
    assert not own, f"{path.relative_to(ROOT)} defines {own}: use agents.common.rendering"
    inner = [f"{f.name}: {ast.unparse(n)}" for f in _functions(tree) for n in ast.walk(f)
             if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("agents.llm")]
    assert not inner, f"{path.relative_to(ROOT)} imports inside functions: {inner}"


def test_the_five_agent_packages_are_all_checked():
    assert sorted(p.parent.name for p in AGENT_PACKAGES) == sorted(AGENT_NAMES)


# -- engagement: one field list ---------------------------------------------------------------------
def test_the_contexts_engagement_has_the_learned_features_with_their_types_and_defaults_plus_the_pages():
    learned = {f.name: f for f in fields(LearnedEngagement)}
    types = typing.get_type_hints(LearnedEngagement)
    context = ContextEngagement.model_fields
    assert list(context) == [*ENGAGEMENT_FEATURES, "recent_pages"]
    for name in ENGAGEMENT_FEATURES:
        assert context[name].annotation == types[name], name
        assert context[name].default == learned[name].default, name
    assert "last_stage" not in context  # the learner's own bookkeeping, not a feature


def test_a_learned_engagement_row_fills_the_context_and_the_context_stays_frozen_and_closed():
    row = LearnedEngagement(page_views_7d=3, pricing_recent=1.5, days_since_last_activity=2.0, last_stage="lead")
    engagement = ContextEngagement(**row.as_features(), recent_pages=["/pricing"])
    assert engagement.page_views_7d == 3 and engagement.pricing_recent == 1.5 and engagement.recent_pages == ["/pricing"]
    with pytest.raises(ValueError):
        ContextEngagement(not_a_feature=1)
    with pytest.raises(ValueError):
        engagement.page_views_7d = 4


# -- one CLI loader ---------------------------------------------------------------------------------
@pytest.fixture()
def plugin_package(tmp_path, monkeypatch):
    package = tmp_path / "fake_cli"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "zeta.py").write_text(
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('zeta', help='last by name')\n"
        "    p.set_defaults(func=lambda args: 0)\n")
    (package / "alpha.py").write_text(
        "from crm_core.errors import UserError\n"
        "def register(subparsers):\n"
        "    p = subparsers.add_parser('alpha', help='first by name')\n"
        "    p.add_argument('--fail', action='store_true')\n"
        "    def run(args):\n"
        "        if args.fail:\n"
        "            raise UserError('the file is not there')\n"
        "        return 3\n"
        "    p.set_defaults(func=run)\n")
    (package / "helpers.py").write_text("VALUE = 1\n")  # no register: not a command
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake_cli"
    for name in [m for m in sys.modules if m == "fake_cli" or m.startswith("fake_cli.")]:
        del sys.modules[name]


def test_plugin_parser_adds_the_commands_of_every_module_with_register_in_name_order(plugin_package):
    parser = plugin_parser(plugin_package, prog="python -m fake", description="A fake command line.")
    help_text = parser.format_help()
    assert help_text.startswith("usage: python -m fake") and "A fake command line." in help_text
    (group,) = parser._subparsers._group_actions
    assert list(group.choices) == ["alpha", "zeta"]


def test_run_command_returns_the_commands_code_and_a_user_error_is_one_line_and_code_2(plugin_package, capsys):
    parser = plugin_parser(plugin_package, prog="python -m fake", description="A fake command line.")
    assert run_command(parser, ["alpha"]) == 3
    assert run_command(parser, ["alpha", "--fail"]) == 2
    assert capsys.readouterr().err == "error: the file is not there\n"


def test_both_command_lines_are_built_by_the_one_loader():
    for path in ("crm_core/cli/__init__.py", "orchestration/cli/__init__.py"):
        source = (ROOT / path).read_text()
        assert "plugin_parser(" in source and "pkgutil" not in source, path
