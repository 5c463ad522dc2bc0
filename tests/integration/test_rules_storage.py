"""Rule set versions in the database, the routing seam and DB-backed assignment state.

Runs on SQLite and PostgreSQL (the ``engine`` fixture), on migrated empty databases.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from hub.cli_rules import route_command, rules_app
from hub.db import session_scope
from hub.models import Appeal, AuditEntry, PoolCursor, RuleSetState, RuleSetVersion
from hub.routing import service
from hub.routing.compile import RulesInvalid
from hub.routing.types import AppealInput
from hub.rules_io import read_dir, write_dir
from hub.storage import rulesets
from hub.storage.assignment import DbAssignmentState
from tests.unit.routing.helpers import BASE, files

SAMPLE = Path(__file__).resolve().parents[2] / "routing_rules" / "sample"
NOW = datetime(2025, 11, 12, 8, 0, tzinfo=UTC)  # Wednesday 11:00 in Moscow


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    service.invalidate_cache()


def _import(engine: Engine, directory: dict[str, str], by: str = "anna") -> int:
    with session_scope(engine) as session:
        version = rulesets.import_draft(session=session, files=directory, created_by=by, note="t")
        assert version.id is not None
        return version.id


def _publish(engine: Engine, version_id: int | None = None, by: str = "boris") -> int:
    with session_scope(engine) as session:
        version = rulesets.publish(session=session, published_by=by, version_id=version_id)
        assert version.id is not None
        return version.id


class TestVersions:
    def test_sample_import_export_is_byte_for_byte(self, engine: Engine, tmp_path: Path) -> None:
        version_id = _import(engine, read_dir(SAMPLE))
        with session_scope(engine, read_only=True) as session:
            number, exported = rulesets.export_files(session=session, version_id=version_id)
        assert number == version_id
        write_dir(tmp_path / "out", exported)
        for name in exported:
            assert (tmp_path / "out" / name).read_bytes() == (SAMPLE / name).read_bytes(), name
        assert sorted(
            p.relative_to(tmp_path / "out").as_posix()
            for p in (tmp_path / "out").rglob("*")
            if p.is_file()
        ) == sorted(exported)  # noqa: E501

    def test_invalid_directory_is_refused_and_not_stored(self, engine: Engine) -> None:
        broken = files(
            rules_yaml="rules:\n  - id: x\n    when: {topic: nope}\n    then: {stop: true}\n"
        )
        with pytest.raises(RulesInvalid) as info, session_scope(engine) as session:
            rulesets.import_draft(session=session, files=broken, created_by="anna")
        assert "rules.yaml:3" in str(info.value.problems[0])
        with session_scope(engine, read_only=True) as session:
            assert rulesets.count_versions(session) == 0

    def test_publish_keeps_one_in_force_and_the_history(self, engine: Engine) -> None:
        first = _import(engine, files())
        assert _publish(engine) == first  # the newest draft by default
        second = _import(engine, files(), by="clara")
        assert _publish(engine, second, by="dmitry") == second
        with session_scope(engine, read_only=True) as session:
            rows = {v.id: v for v in rulesets.list_versions(session)}
            assert rulesets.published_id(session) == second
            audit = session.exec(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert rows[first].state == RuleSetState.superseded
        assert rows[first].published_by == "boris" and rows[first].published_at is not None
        assert rows[second].state == RuleSetState.published
        assert rows[second].created_by == "clara" and rows[second].published_by == "dmitry"
        assert [(a.action, a.actor, a.object_id) for a in audit] == [
            ("rules.import", "anna", str(first)),
            ("rules.publish", "boris", str(first)),
            ("rules.import", "clara", str(second)),
            ("rules.publish", "dmitry", str(second)),
        ]
        assert audit[-1].details == {"previous": first}

    def test_only_drafts_are_published_and_old_ones_restored(self, engine: Engine) -> None:
        first = _import(engine, files())
        _publish(engine)
        with pytest.raises(rulesets.RuleSetError, match="только черновик"):
            _publish(engine, first)
        with pytest.raises(rulesets.RuleSetError, match="нет черновиков"):
            _publish(engine)
        with session_scope(engine) as session:
            draft = rulesets.restore(session=session, version_id=first, created_by="anna")
            old = session.get(RuleSetVersion, first)
            assert old is not None
            assert (draft.files, draft.checksum) == (old.files, old.checksum)
            assert draft.state == RuleSetState.draft and draft.id != first


class TestRouteSeam:
    def test_no_published_version(self, engine: Engine) -> None:
        with session_scope(engine) as session:
            decision = service.route(session, AppealInput("vk", "x", "comment", "вакансии"))
        assert decision.topic is None and decision.assignee is None
        assert [(t.step, t.message) for t in decision.trace] == [("rules", service.NO_RULES)]

    def test_routes_by_the_published_version_compiled_once(self, engine: Engine) -> None:
        version_id = _import(engine, files())
        _publish(engine)
        appeal = AppealInput("vk", "x", "comment", "Просроченное молоко в Самаре")
        with session_scope(engine) as session:
            decision = service.route(session, appeal, now=NOW)
            compiled = service.compiled(session, version_id)
            assert service.route(session, appeal, now=NOW).rules_version == version_id
            assert service.compiled(session, version_id) is compiled
        assert decision.rules_version == version_id
        assert (decision.topic, decision.region, decision.department) == (
            "complaint_quality",
            "samara",
            "quality",
        )
        assert decision.assignee is not None and decision.assignee.id == "qsam"

    def test_deciding_queries_the_database_a_fixed_number_of_times(self, engine: Engine) -> None:
        _import(engine, files())
        _publish(engine)
        appeal = AppealInput("vk", "x", "comment", "Просроченное молоко в Самаре")
        with session_scope(engine) as session:
            service.route(session, appeal, now=NOW)  # compile outside the count
            statements: list[str] = []
            listener = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            try:
                service.route(session, appeal, now=NOW)
            finally:
                event.remove(engine, "before_cursor_execute", listener)
        # Which version is in force, and one grouped count for least-open: nothing per rule.
        assert len(statements) == 2, statements
        assert "GROUP BY" in statements[1]


class TestAssignmentState:
    def _appeal(self, assignee: str, state: str) -> Appeal:
        return Appeal(
            channel="vk", source="x", kind="comment", text="t", assignee_id=assignee, state=state
        )

    def test_open_counts_in_one_grouped_query(self, engine: Engine) -> None:
        with session_scope(engine) as session:
            for assignee, state in [
                ("op1", "routed"),
                ("op1", "delivered"),
                ("op1", "answered"),  # has a first reply: no longer open
                ("op2", "routed"),
                ("op3", "closed"),
            ]:
                session.add(self._appeal(assignee, state))
        with session_scope(engine) as session:
            state = DbAssignmentState(session)
            assert state.open_counts(["op1", "op2", "op3", "op4"]) == {
                "op1": 2,
                "op2": 1,
                "op3": 0,
                "op4": 0,
            }
            assert state.queries == 1

    def test_least_open_reads_the_appeals_table(self, engine: Engine) -> None:
        rules = "rules:\n  - id: q\n    then: {assign: {pool: quality}, stop: true}\n"
        employees = BASE["employees.csv"] + "qsam2,Качество Самара Два,23,quality,,samara,*,,,,\n"
        _import(engine, files(rules_yaml=rules, employees_csv=employees))
        _publish(engine)
        appeal = AppealInput("vk", "x", "comment", "в Самаре")
        with session_scope(engine) as session:
            first = service.route(session, appeal, now=NOW)
            session.add(self._appeal("qsam", "routed"))
            session.add(self._appeal("qsam", "delivered"))
            session.add(self._appeal("qsam2", "routed"))
        with session_scope(engine) as session:
            second = service.route(session, appeal, now=NOW)
        assert first.assignee is not None and first.assignee.id == "qsam"  # 0 and 0: list order
        assert second.assignee is not None and second.assignee.id == "qsam2"  # 2 against 1
        assert "у кого меньше открытых" in second.trace[-2].message

    def test_round_robin_cursor_is_shared_between_sessions(self, engine: Engine) -> None:
        rules = "rules:\n  - id: h\n    then: {assign: {pool: hotline}, stop: true}\n"
        _import(engine, files(rules_yaml=rules))
        _publish(engine)
        picks = []
        for _ in range(4):
            with session_scope(engine) as session:
                decision = service.route(session, AppealInput("vk", "x", "comment", "?"), now=NOW)
                assert decision.assignee is not None
                picks.append(decision.assignee.id)
        assert picks == ["op1", "op2", "op3", "op1"]
        with session_scope(engine, read_only=True) as session:
            cursor = session.get(PoolCursor, "hotline")
            assert cursor is not None and cursor.last_employee_id == "op1"

    @pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
    def test_a_turn_does_not_wait_for_another_workers_open_batch(self, engine: Engine) -> None:
        """Worker A routed an appeal and its batch is still open; worker B routes the next one
        from the same pool without waiting for A's commit, and gets the next turn. (PostgreSQL:
        on SQLite one writer at a time is the database's own rule.)"""
        import threading

        rules = "rules:\n  - id: h\n    then: {assign: {pool: hotline}, stop: true}\n"
        _import(engine, files(rules_yaml=rules))
        _publish(engine)
        appeal = AppealInput("vk", "x", "comment", "?")
        picks: list[str] = []
        with session_scope(engine) as batch_a:
            decision = service.route(batch_a, appeal, now=NOW)
            assert decision.assignee is not None
            picks.append(decision.assignee.id)

            def worker_b() -> None:
                with session_scope(engine) as batch_b:
                    other = service.route(batch_b, appeal, now=NOW)
                    assert other.assignee is not None
                    picks.append(other.assignee.id)

            thread = threading.Thread(target=worker_b)
            thread.start()
            thread.join(timeout=20)
            blocked = thread.is_alive()
        thread.join()
        assert not blocked, "worker B waited for worker A's batch to commit"
        assert picks == ["op1", "op2"]

    def test_dry_run_does_not_move_the_cursor(self, engine: Engine) -> None:
        with session_scope(engine) as session:
            state = DbAssignmentState(session, record=False)
            assert state.last_assigned("hotline") is None
            state.advance("hotline", "op2")
        with session_scope(engine, read_only=True) as session:
            assert session.get(PoolCursor, "hotline") is None


class TestCommands:
    app = typer.Typer()
    app.add_typer(rules_app, name="rules")
    app.command("route")(route_command)

    def invoke(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        result = CliRunner().invoke(self.app, list(args), input=stdin)
        return result.exit_code, result.stdout, result.stderr

    def test_import_publish_versions_export_diff_route(
        self, engine: Engine, tmp_path: Path
    ) -> None:
        code, out, err = self.invoke(
            "rules", "import", str(SAMPLE), "--note", "sample", "--by", "anna"
        )
        assert code == 0, err
        assert "черновик 1" in out
        changed = tmp_path / "changed"
        write_dir(changed, read_dir(SAMPLE))
        rules_file = changed / "rules.yaml"
        rules_file.write_text(
            rules_file.read_text(encoding="utf-8").replace("C6:UC_THANKS", "C6:NEW"),
            encoding="utf-8",
        )
        assert self.invoke("rules", "import", str(changed), "--by", "anna")[0] == 0
        code, out, _ = self.invoke("rules", "publish", "1", "--by", "boris")
        assert code == 0 and "версия 1 опубликована" in out
        code, out, _ = self.invoke("rules", "versions")
        assert code == 0
        lines = out.splitlines()
        assert "draft" in lines[0] and "published" in lines[1] and "опубликовал boris" in lines[1]
        code, out, _ = self.invoke("rules", "diff", "1", "2")
        assert code == 0
        assert '-      target: {entity: deal, pipeline: 6, stage: "C6:UC_THANKS"}' in out
        assert '+      target: {entity: deal, pipeline: 6, stage: "C6:NEW"}' in out
        code, _, err = self.invoke("rules", "export", str(tmp_path / "exported"))
        assert code == 0, err
        assert read_dir(tmp_path / "exported") == read_dir(SAMPLE)
        assert self.invoke("rules", "export", str(tmp_path / "exported"))[0] == 2  # not empty
        appeal = {
            "channel": "vk",
            "source": "club210000126",
            "kind": "comment",
            "text": "вакансии?",
        }
        code, out, err = self.invoke("route", stdin=json.dumps(appeal))
        assert code == 0, err
        decision = json.loads(out)
        assert decision["rules_version"] == 1
        assert (decision["topic"], decision["region"]) == ("vacancy", "tatarstan")

    def test_errors_exit_2(self, engine: Engine, tmp_path: Path) -> None:
        assert self.invoke("rules", "publish")[0] == 2
        assert self.invoke("rules", "export", str(tmp_path / "x"))[0] == 2
        write_dir(
            tmp_path / "bad", files(rules_yaml="rules:\n  - id: x\n    then: {region: mars}\n")
        )
        code, _, err = self.invoke("rules", "import", str(tmp_path / "bad"))
        assert code == 2 and "rules.yaml:3:" in err and "mars" in err

    def test_route_without_a_published_version(self, engine: Engine) -> None:
        appeal = {"channel": "vk", "source": "x", "kind": "comment", "text": "?"}
        code, out, _ = self.invoke("route", stdin=json.dumps(appeal))
        assert code == 0
        assert json.loads(out)["trace"][0]["message"] == service.NO_RULES
