"""The architecture holds: layers, pure modules, no import circles, one name per thing, small
folders (rules and checker in tests/support/layers.py). Each rule is also shown to fail on a
scratch package with one planted violation, so a green run means the rule was checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import layers

PACKAGE = Path(__file__).resolve().parent.parent / "mailproc"


@pytest.fixture(scope="module")
def modules() -> dict[str, layers.Module]:
    return layers.read_package(PACKAGE)


def test_no_module_imports_from_a_layer_above_its_own(modules):
    assert layers.upward_imports(modules, "mailproc") == []


def test_pure_modules_reach_no_database_network_or_shell(modules):
    assert layers.impure_imports(modules, "mailproc") == []


def test_no_import_circle_counting_type_checking_and_function_level_imports(modules):
    assert layers.circles(modules, "mailproc") == []


def test_no_folder_holds_more_than_fifteen_modules():
    assert layers.crowded_folders(PACKAGE) == []


def test_no_two_sibling_modules_differ_only_by_an_ending_or_an_abbreviation():
    assert layers.look_alike_names(PACKAGE) == []


def test_each_public_type_name_is_defined_once(modules):
    assert layers.names_defined_twice(modules) == []


def test_every_top_level_module_and_package_has_a_layer():
    names = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
    }
    placed = set().union(*layers.LAYERS)
    assert names - {"__init__"} <= placed


# --- the checker catches what it is there to catch --------------------------------------------


def _scratch(root: Path, files: dict[str, str]) -> dict[str, layers.Module]:
    """A package `mailproc` under `root` holding `files` (path -> source)."""
    package = root / "mailproc"
    for name, source in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(package).parents:
            (package / parent / "__init__.py").touch()
        path.write_text(source)
    return layers.read_package(package)


def test_an_upward_import_is_caught(tmp_path):
    modules = _scratch(
        tmp_path,
        {
            "workflow/decision.py": "from mailproc.desk.mail import Desk\n",
            "desk/mail.py": "from mailproc.workflow import decision\n",
        },
    )
    assert layers.upward_imports(modules, "mailproc") == [
        "workflow.decision imports desk.mail, a layer above it"
    ]


def test_an_upward_import_inside_a_function_is_caught(tmp_path):
    source = "def later():\n    from mailproc.cli import app\n"
    modules = _scratch(tmp_path, {"store/db.py": source, "cli/app.py": ""})
    assert layers.upward_imports(modules, "mailproc") == [
        "store.db imports cli.app, a layer above it"
    ]


def test_a_package_without_a_layer_is_caught(tmp_path):
    modules = _scratch(
        tmp_path, {"misc/helpers.py": "from mailproc.store import db\n", "store/db.py": ""}
    )
    assert layers.upward_imports(modules, "mailproc") == ["misc: has no place in the layers"]


def test_a_pure_module_importing_sqlalchemy_is_caught(tmp_path):
    modules = _scratch(tmp_path, {"inbound/parse.py": "import sqlalchemy\n"})
    assert layers.impure_imports(modules, "mailproc") == ["inbound.parse imports sqlalchemy"]


def test_a_pure_module_reaching_the_store_through_another_module_is_caught(tmp_path):
    modules = _scratch(
        tmp_path,
        {
            "sla/clocks.py": "from mailproc.sla import state\n",
            "sla/state.py": "from sqlalchemy.orm import Session\n",
            "notify/context.py": "from mailproc.store.db import Incident\n",
            "store/db.py": "",
        },
    )
    assert layers.impure_imports(modules, "mailproc") == [
        "notify.context imports mailproc.store.db.Incident",
        "sla.clocks (through sla.state) imports sqlalchemy.orm.Session",
    ]


def test_a_pure_module_importing_a_socket_or_smtp_is_caught(tmp_path):
    modules = _scratch(
        tmp_path, {"workflow/intents.py": "import socket\n", "signing.py": "import smtplib\n"}
    )
    assert layers.impure_imports(modules, "mailproc") == [
        "signing imports smtplib",
        "workflow.intents imports socket",
    ]


def test_a_circle_through_a_type_checking_import_is_caught(tmp_path):
    modules = _scratch(
        tmp_path,
        {
            "notify/outbox.py": "from mailproc.notify import known_errors\n",
            "notify/known_errors.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from mailproc.notify.outbox import Outbox\n"
            ),
            "notify/letter.py": "from mailproc.notify import outbox\n",
        },
    )
    assert layers.circles(modules, "mailproc") == [["notify.known_errors", "notify.outbox"]]


def test_a_crowded_folder_is_caught(tmp_path):
    _scratch(tmp_path, {f"store/part{n}.py": "" for n in range(16)})
    assert layers.crowded_folders(tmp_path / "mailproc") == [
        f"{tmp_path}/mailproc/store: 16 modules"
    ]


def test_names_differing_by_an_ending_or_an_abbreviation_are_caught(tmp_path):
    _scratch(
        tmp_path,
        {
            "desk/escalation.py": "",
            "desk/escalator.py": "",
            "inbound/automail.py": "",
            "inbound/automatic_mail.py": "",
            "notify/notices.py": "",
            "notify/notice_context.py": "",
            "notify/outbox.py": "",
            "notify/sender.py": "",
        },
    )
    package = tmp_path / "mailproc"
    assert layers.look_alike_names(package) == [
        f"{package}/desk: escalation / escalator",
        f"{package}/inbound: automail / automatic_mail",
        f"{package}/notify: notice_context / notices",
    ]


def test_one_type_name_defined_in_two_modules_is_caught(tmp_path):
    modules = _scratch(
        tmp_path,
        {
            "workflow/decision.py": "Outcome = tuple[int, str]\n",
            "desk/outcome.py": "class Outcome:\n    pass\n",
            "store/db.py": "class Outcome:\n    pass\n",  # a table: named after what it stores
        },
    )
    assert layers.names_defined_twice(modules) == ["Outcome: desk.outcome, workflow.decision"]
