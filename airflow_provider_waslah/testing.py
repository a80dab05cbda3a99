"""Test your own DAGs with real Airflow against the Waslah emulator (the ``waslah_airflow`` pytest plugin).

Installing the provider registers this module as a pytest plugin (a ``pytest11`` entry point, next
to the emulator's ``waslah_emulator`` plugin). It gives:

* ``waslah_airflow`` (fixture, per test): a :class:`WaslahAirflow` with a private Airflow home, a
  migrated metadata database, a dags folder, and ``waslah_default`` pointing at a freshly reset
  emulator. ``waslah_airflow.run(dag_or_file)`` runs a DAG with ``dag.test()`` and returns a
  :class:`DagRunResult`: the run's ``state``, each task's state, XComs and the emulator's
  ``ledger`` (what every phone received).
* ``waslah_airflow_home`` (fixture, per session): the Airflow home, its database migrated once.

**AIRFLOW_HOME must be set before Airflow is first imported**: Airflow reads its configuration
(home, database, dags folder) once, at import. pytest loads this plugin before any ``conftest.py``
and any test module, and the plugin then points ``AIRFLOW_HOME`` at a new temporary directory
(and drops ``AIRFLOW_CONFIG``, ``AIRFLOW__CORE__DAGS_FOLDER`` and
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN*`` from the environment, so the database and dags folder
follow the home), so tests never touch a real Airflow home. Consequences:

* a ``conftest.py`` that sets ``AIRFLOW_HOME`` itself, before importing Airflow, wins: the
  fixtures use that home (and migrate its database);
* if Airflow was imported before this plugin ran (another plugin importing it at load time),
  the fixtures refuse to run rather than migrate and write the home Airflow was configured with;
* ``waslah_airflow_home = keep`` in the pytest ini file (``[tool.pytest.ini_options]``) leaves the
  environment alone: the fixtures then use whatever home Airflow is configured with.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_waslah.emulator.handle import EmulatorHandle

#: The ini option choosing how the plugin treats ``AIRFLOW_HOME``: ``private`` (default) or ``keep``.
INI_OPTION = "waslah_airflow_home"
#: Environment variables dropped in ``private`` mode, so that everything follows ``AIRFLOW_HOME``.
_FOLLOW_HOME = (
    "AIRFLOW_CONFIG",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_SECRET",
)


@dataclass
class _Setup:
    """What the plugin did to the environment at start-up (restored when the session ends)."""

    mode: str = "private"
    private_home: Path | None = None
    imported_too_early: bool = False
    saved: dict[str, str | None] = field(default_factory=dict)


_setup = _Setup()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``waslah_airflow_home`` ini option."""
    parser.addini(
        INI_OPTION,
        "waslah_airflow fixtures: 'private' (default) gives the session a temporary AIRFLOW_HOME; "
        "'keep' uses the home Airflow is configured with",
        default="private",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """Before any ``conftest.py`` is imported: give the session a private ``AIRFLOW_HOME``."""
    mode = str(early_config.getini(INI_OPTION) or "private").strip().lower()
    if mode not in ("private", "keep"):
        raise pytest.UsageError(f"{INI_OPTION} must be 'private' or 'keep', not {mode!r}")
    _setup.mode = mode
    if mode == "keep":
        return
    if "airflow" in sys.modules:  # configured already: a new home would not be read
        _setup.imported_too_early = True
        return
    home = Path(tempfile.mkdtemp(prefix="waslah-pytest-airflow-home-"))
    (home / "dags").mkdir()
    changes: dict[str, str | None] = {"AIRFLOW_HOME": str(home), **dict.fromkeys(_FOLLOW_HOME)}
    if "AIRFLOW__CORE__LOAD_EXAMPLES" not in os.environ:
        changes["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    for name, value in changes.items():
        _setup.saved[name] = os.environ.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _setup.private_home = home


def pytest_unconfigure(config: pytest.Config) -> None:
    """Put the environment back and remove the private home."""
    for name, value in _setup.saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _setup.saved.clear()
    if _setup.private_home is not None:
        shutil.rmtree(_setup.private_home, ignore_errors=True)
        _setup.private_home = None


def home_problem(configured: Path, environ_home: str | None, setup: _Setup) -> str | None:
    """Why the fixtures must not use Airflow's configured home; ``None`` when they may.

    :param configured: the home Airflow read at import.
    :param environ_home: ``AIRFLOW_HOME`` in the environment now.
    :param setup: what the plugin did at start-up.
    """
    if setup.mode == "keep":
        return None
    if setup.private_home is not None and configured == setup.private_home:
        return None
    if setup.private_home is not None and environ_home and Path(environ_home) == configured:
        return None  # a conftest.py chose its own home before importing Airflow: respected
    return (
        f"Airflow is configured with AIRFLOW_HOME={configured}, not a private home for the tests: Airflow "
        "was imported before the waslah_airflow pytest plugin could set one (AIRFLOW_HOME must be set "
        "before Airflow is first imported). Set AIRFLOW_HOME to a temporary directory before anything "
        f"imports Airflow, or put `{INI_OPTION} = keep` in your pytest ini file to test in {configured} as it is."
    )


def _configured_home() -> Path:
    from airflow import configuration

    return Path(configuration.AIRFLOW_HOME)


@pytest.fixture(scope="session")
def waslah_airflow_home() -> Path:
    """The session's Airflow home with its metadata database migrated (``airflow db migrate``, once)."""
    home = _configured_home()
    problem = home_problem(home, os.environ.get("AIRFLOW_HOME"), _setup)
    if problem:
        pytest.fail(problem, pytrace=False)
    from airflow.configuration import conf

    Path(conf.get("core", "dags_folder")).mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed in {home}:\n{done.stderr[-3000:]}", pytrace=False)
    return home


@dataclass
class DagRunResult:
    """What one ``dag.test()`` run did.

    :ivar state: the run's final state, ``"success"`` or ``"failed"``.
    :ivar ledger: the emulator's ledger after the run: every message per recipient (``type``,
        ``text`` or file, ``status``, ...), as ``EmulatorHandle.ledger()`` returns it.
    :ivar task_states: each task's final state, one entry per map index.
    :ivar dag_run: Airflow's ``DagRun``.
    """

    state: str
    ledger: dict[str, list[dict[str, Any]]]
    task_states: dict[str, list[str]]
    dag_run: Any

    def sent_to(self, recipient: str) -> list[dict[str, Any]]:
        """The ledger's messages to ``recipient`` (a normalised number such as ``6281234560001``)."""
        return self.ledger.get(recipient, [])

    def xcom(self, task_id: str, map_index: int = -1, key: str = "return_value") -> Any:
        """The XCom ``key`` a task instance of this run pushed (``None`` when it pushed none)."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(
                    dag_id=self.dag_run.dag_id,
                    run_id=self.dag_run.run_id,
                    task_id=task_id,
                    map_index=map_index,
                    key=key,
                )
                .one_or_none()
            )
            return None if row is None else XComModel.deserialize_value(row)


def _state(value: Any) -> str:
    return str(getattr(value, "value", value))


def _dag_bag_module() -> tuple[Any, Any, dict[str, Any]]:
    """``DagBag``, ``sync_bag_to_db`` and DagBag's extra arguments, where this Airflow keeps them."""
    try:  # Airflow 3.2+
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

        return DagBag, sync_bag_to_db, {}
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag, sync_bag_to_db  # type: ignore[no-redef]

        return DagBag, sync_bag_to_db, {"include_examples": False}


def load_dag_file(path: Path, dag_id: str | None = None) -> Any:
    """Parse a DAG file as Airflow's DAG processor does; return its DAG ``dag_id`` (or its only DAG).

    The file's folder is put on ``sys.path`` first, as Airflow does with its dags folder, so the
    file may import modules that sit beside it.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no DAG file at {path}")
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    dag_bag_class, _, extra = _dag_bag_module()
    bag = dag_bag_class(dag_folder=str(path), safe_mode=False, **extra)  # parse it even without 'dag' in it
    if bag.import_errors:
        errors = "\n".join(f"{file}:\n{textwrap.indent(str(text), '  ')}" for file, text in bag.import_errors.items())
        raise RuntimeError(f"{path} does not import:\n{errors}")
    if dag_id is not None:
        dag = bag.dags.get(dag_id)
        if dag is None:
            raise LookupError(f"{path} has no DAG {dag_id!r}; it has {sorted(bag.dags) or 'none'}")
        return dag
    if not bag.dags:
        raise LookupError(f"{path} defines no DAG at module level")
    if len(bag.dags) != 1:
        raise LookupError(f"{path} has {len(bag.dags)} DAGs ({', '.join(sorted(bag.dags))}); pass dag_id=")
    return next(iter(bag.dags.values()))


def register_dag(dag: Any) -> None:
    """Write ``dag`` to the metadata database in the dags-folder bundle, as the DAG processor would.

    ``dag.test()`` runs only DAGs that a DAG bundle holds ("the dag is not serialized" otherwise);
    registering the DAG object itself lets a test run a DAG from any file, or one built in a test.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils.session import create_session

    dag_bag_class, sync_bag_to_db, extra = _dag_bag_module()
    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    bundles = list(manager.get_all_dag_bundles())
    bundle = next((b for b in bundles if b.name == "dags-folder"), bundles[0] if bundles else None)
    if bundle is None:
        raise RuntimeError("Airflow has no DAG bundle configured ([dag_processor] dag_bundle_config_list)")
    bag = dag_bag_class(dag_folder=os.devnull, collect_dags=False, **extra)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, bundle.name, None)


class WaslahAirflow:
    """A private Airflow with ``waslah_default`` pointing at the emulator; what ``waslah_airflow`` gives.

    :ivar home: the Airflow home.
    :ivar dags_folder: the dags folder (``write_dag`` puts files there).
    :ivar emulator: the emulator's :class:`~airflow_provider_waslah.emulator.handle.EmulatorHandle`
        (reset for this test): ``seed()``, ``add_fault()``, ``ledger()``, ``inbound()``, ...
    :ivar connection: the ``AIRFLOW_CONN_WASLAH_DEFAULT`` value set for the test.
    """

    def __init__(self, home: Path, dags_folder: Path, emulator: EmulatorHandle, connection: str) -> None:
        self.home = home
        self.dags_folder = dags_folder
        self.emulator = emulator
        self.connection = connection

    def write_dag(self, filename: str, source: str) -> Path:
        """Write DAG source (dedented) to ``dags_folder/filename``; return the path."""
        path = self.dags_folder / filename
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        return path

    def run(self, dag: Any, dag_id: str | None = None, **test_kwargs: Any) -> DagRunResult:
        """Run a DAG with ``dag.test()`` to its end; return its state and the emulator's ledger.

        :param dag: a DAG object, or the path of a DAG file (``dag_id`` picks one of several DAGs).
        :param test_kwargs: passed to ``dag.test()`` (``logical_date``, ``run_conf``, ...).
        """
        if isinstance(dag, (str, os.PathLike)):
            dag = load_dag_file(Path(dag), dag_id)
        register_dag(dag)
        dag_run = dag.test(**test_kwargs)
        task_states: dict[str, list[str]] = {}
        for ti in dag_run.get_task_instances():
            task_states.setdefault(ti.task_id, []).append(_state(ti.state))
        return DagRunResult(_state(dag_run.state), self.emulator.ledger(), task_states, dag_run)

    def __repr__(self) -> str:
        return f"WaslahAirflow(home={str(self.home)!r}, emulator={self.emulator!r})"


@pytest.fixture
def waslah_airflow(waslah_airflow_home: Path, waslah_emulator: EmulatorHandle) -> Iterator[WaslahAirflow]:
    """A private Airflow (migrated database, dags folder) with ``waslah_default`` on a freshly reset emulator."""
    from airflow.configuration import conf

    connection = waslah_emulator.airflow_connection()
    dags_folder = Path(conf.get("core", "dags_folder"))
    with _env("AIRFLOW_CONN_WASLAH_DEFAULT", connection):
        yield WaslahAirflow(waslah_airflow_home, dags_folder, waslah_emulator, connection)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


__all__ = [
    "DagRunResult",
    "WaslahAirflow",
    "home_problem",
    "load_dag_file",
    "register_dag",
    "waslah_airflow",
    "waslah_airflow_home",
]
