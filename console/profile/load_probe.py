"""Reading a profile's health endpoints and functional probe: parameters, login, request,
and the answer's predicates (envelope, failure shapes, shape, modes).

A mixin of the profile loader (load.py), reporting through the same loader; the flags
(``flag_ids``) are read before it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from console.config.reader import _non_empty, _one_of, _Table, _within
from console.profile import checks, patterns, predicates
from console.profile.checks import unique, unknown
from console.profile.model import (
    AnswerSpec,
    Endpoint,
    FailureShape,
    Health,
    Login,
    Mode,
    Parameter,
    Probe,
    Request,
)
from console.profile.vocabulary import PARAMETER_TYPES

if TYPE_CHECKING:
    from console.config.load import _Loader

    _Base = _Loader
else:
    _Base = object

METHODS = ("GET", "POST")


class ProbeReader(_Base):
    flag_ids: tuple[str, ...] = ()
    mode_ids: tuple[str, ...] = ()

    # --- [health] ----------------------------------------------------------------------------

    def _health(self, root: _Table) -> Health | None:
        t = checks.required_table(root, "health", "[health.liveness] and/or [health.readiness]")
        if t is None:
            return None
        liveness, readiness = self._endpoint(t, "liveness"), self._endpoint(t, "readiness")
        have = [name for name, e in (("liveness", liveness), ("readiness", readiness)) if e]
        if not have and "liveness" not in t.data and "readiness" not in t.data:
            t.problem(None, "needs [health.liveness] and/or [health.readiness]")
        truth = t.get("truth", str, have[-1] if have else "liveness", _one_of(("liveness", "readiness")))
        if truth and truth not in t.data.keys() | set(have) and have:
            t.problem("truth", f"there is no [health.{truth}] to tell the truth (defined: {', '.join(have)})")
        health = Health(liveness, readiness, truth, t.get("note", str, ""))
        t.finish()
        return health

    def _endpoint(self, health: _Table, name: str) -> Endpoint | None:
        t = health.table(name)
        if t is None:
            return None
        endpoint = t.get("endpoint", str, check=checks.endpoint)
        ok = self._predicate(t, "ok")
        e = Endpoint(
            endpoint=endpoint or "",
            ok=ok,  # type: ignore[arg-type]  # None only with problems reported
            version=self._path(t, "version"),
            components=self._path(t, "components"),
            status=t.get("status", int, 200, checks.status),
        )
        t.finish()
        return e if endpoint and ok else None

    def _path(self, t: _Table, key: str, required: bool = False) -> predicates.JsonPath | None:
        text = t.get(key, str) if required else t.get(key, str, None)
        if text is None:
            return None
        path = predicates.parse_path(text)
        if path is None:
            t.problem(key, f"{text!r} is not a path: {predicates.PATH_HINT}")
        return path

    # --- [probe] -----------------------------------------------------------------------------

    def _probe(self, root: _Table) -> Probe | None:
        t = checks.required_table(root, "probe", "title, [probe.request] and [probe.answer]")
        if t is None:
            return None
        title = t.get("title", str, check=_non_empty)
        parameters = self._parameters(t)
        login = self._login(t)
        request = self._request(t, login is not None or "login" in t.data)
        answer = self._answer(t)
        used: set[str] = set()
        for where, text, secret_ok in self._templates(t.data):
            stray = re.search(r"[{}]", patterns.PLACEHOLDER.sub("", text))
            if stray:
                self.problem(where, f"{text!r}: a brace that is not a {{parameter}} placeholder")
            for alternatives, quoted in patterns.placeholders(text):
                for name in alternatives:
                    used.add(name)
                    if name not in parameters:
                        self.problem(where, unknown(name, "a parameter", list(parameters)) + " ([probe.parameters])")
                    elif parameters[name].type == "secret" and not secret_ok:
                        self.problem(
                            where,
                            f"{{{name}}} is a secret: it goes in the login body only "
                            "(a URL is logged by every proxy on the way)",
                        )
                if quoted:
                    self.problem(where, f"{{{alternatives[0]}:q}} shell-quotes, for commands; here write {{name}}")
        for name in parameters:
            if name not in used:
                self.problem((*t.path, "parameters", name), "declared but no template of the probe uses it")
        t.finish()
        if None in (title, request, answer) or ("login" in t.data and login is None):
            return None
        return Probe(title, tuple(parameters.values()), request, answer, login)  # type: ignore[arg-type]

    @staticmethod
    def _templates(probe: dict[str, Any]):
        """(where, text, may hold a secret) of every template, read from the file as written
        (so that a typo elsewhere in the login or request does not hide what they use)."""
        login, request = probe.get("login"), probe.get("request")
        if isinstance(login, dict):
            for keys, text in _strings(login.get("body"), ()):
                yield ("probe", "login", "body", *keys), text, True
        if isinstance(request, dict):
            if isinstance(request.get("endpoint"), str):
                yield ("probe", "request", "endpoint"), request["endpoint"], False
            query = request.get("query")
            for key, value in query.items() if isinstance(query, dict) else ():
                if isinstance(value, str):
                    yield ("probe", "request", "query", key), value, False

    def _parameters(self, probe: _Table) -> dict[str, Parameter]:
        t = probe.table("parameters")
        out: dict[str, Parameter] = {}
        if t is None:
            return out
        for name in t.data:
            pt = t.table(name)
            if pt is None:
                continue
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                t.problem(name, f"{name!r} cannot be a placeholder: letters, digits and _ only")
            kind = pt.get("type", str, check=_one_of(PARAMETER_TYPES))
            lo, hi = pt.get("min", int, None), pt.get("max", int, None)
            if kind != "integer":
                for key in ("min", "max"):
                    if key in pt.data:
                        pt.problem(key, f"{key} is for integer parameters")
            default = self._value(pt, "default", kind, lo, hi)
            envs: list[tuple[str, Any]] = []
            et = pt.table("environments")
            if et:
                for env in et.data:
                    value = self._value(et, env, kind, lo, hi)
                    if value is not None:
                        envs.append((env, value))
            out[name] = Parameter(name, kind or "string", pt.get("description", str, ""), default, tuple(envs), lo, hi)
            pt.finish()
        return out

    def _value(self, t: _Table, key: str, kind: str | None, lo: int | None, hi: int | None) -> Any:
        if key not in t.data:
            t.used.add(key)
            return None
        if kind == "secret":
            if isinstance(t.data[key], str):
                t.used.add(key)
                t.problem(key, 'secrets are never written in a profile: use { env = "VAR" } or { file = "PATH" }')
                return None
            return t.secret(key)
        if kind == "integer":
            low, high = lo if lo is not None else -(2**63), hi if hi is not None else 2**63 - 1
            return t.get(key, int, None, _within(low, high))
        return t.get(key, str, None)

    def _login(self, probe: _Table) -> Login | None:
        t = probe.table("login")
        if t is None:
            return None
        body = t.get("body", dict, {}, checks.json_template)
        login = Login(
            method=t.get("method", str, "POST", _one_of(METHODS)),
            endpoint=t.get("endpoint", str, check=checks.endpoint) or "",
            body=body or {},
            token=self._path(t, "token", required=True),  # type: ignore[arg-type]
            header=t.get("header", str, "Authorization", _non_empty),
            scheme=t.get("scheme", str, "Bearer"),
            refused=t.get("refused", int, 401, checks.status),
        )
        t.finish()
        return login if login.endpoint and login.token else None

    def _request(self, probe: _Table, has_login: bool) -> Request | None:
        t = checks.required_table(probe, "request", "method, endpoint and query")
        if t is None:
            return None
        query = []
        qt = t.table("query")
        if qt:
            for key, value in qt.data.items():
                qt.used.add(key)
                if isinstance(value, bool) or not isinstance(value, str | int):
                    qt.problem(key, f"expected a string or an integer, got {value!r}")
                else:
                    query.append((key, str(value)))
        authenticated = t.get("authenticated", bool, has_login)
        if authenticated and not has_login:
            t.problem("authenticated", "there is no [probe.login] to take a token from")
        request = Request(
            method=t.get("method", str, "GET", _one_of(METHODS)),
            endpoint=t.get("endpoint", str, check=checks.endpoint) or "",
            query=tuple(query),
            title=t.get("title", str, ""),
            authenticated=authenticated,
        )
        t.finish()
        return request if request.endpoint else None

    def _answer(self, probe: _Table) -> AnswerSpec | None:
        failures, modes = self._failures(probe), self._modes(probe)
        self.mode_ids = tuple(m.id for m in modes)  # the log's mode lines name them, whatever else fails
        t = checks.required_table(probe, "answer", "status, envelope, shape and data_present")
        if t is None:
            return None
        lists = {}
        for key in ("envelope", "shape"):
            t.used.add(key)
            lists[key] = predicates.read_list(self, t.data[key], (*t.path, key)) if key in t.data else ()
        detail = []
        for i, text in enumerate(t.get("error_detail", list, [], checks.names) or []):
            path = predicates.parse_path(text)
            if path is None:
                t.problem("error_detail", f"item #{i + 1}, {text!r}, is not a path: {predicates.PATH_HINT}")
            detail.append(path)
        answer = AnswerSpec(
            status=t.get("status", int, 200, checks.status),
            envelope=lists["envelope"] or (),
            failures=failures,
            shape=lists["shape"] or (),
            modes=modes,
            data_present=self._predicate(t, "data_present", required=False),
            count=self._path(t, "count"),
            count_label=t.get("count_label", str, ""),
            error_detail=tuple(p for p in detail if p),
        )
        t.finish()
        return None if lists["envelope"] is None or lists["shape"] is None else answer

    def _modes(self, probe: _Table) -> tuple[Mode, ...]:
        out = []
        items = probe.tables("modes") or []
        for mt in items:
            when = self._predicate(mt, "when")
            flags = []
            ft = mt.table("flags", required=True)
            if ft:
                for flag, value in ft.data.items():
                    ft.used.add(flag)
                    if flag not in self.flag_ids:
                        ft.problem(flag, unknown(flag, "a flag", self.flag_ids))
                    elif not isinstance(value, bool):
                        ft.problem(flag, f"expected true or false, got {value!r}")
                    else:
                        flags.append((flag, value))
            out.append(
                Mode(
                    mt.get("id", str, check=checks.id_check()) or "",
                    when,
                    tuple(flags),  # type: ignore[arg-type]
                    mt.get("title", str, ""),
                )
            )
            mt.finish()
        unique(items, out, "id")
        return tuple(out)

    def _failures(self, probe: _Table) -> tuple[FailureShape, ...]:
        out = []
        items = probe.tables("failures") or []
        for ft in items:
            out.append(
                FailureShape(
                    id=ft.get("id", str, check=checks.id_check()) or "",
                    title=ft.get("title", str, check=_non_empty) or "",
                    when=self._predicate(ft, "when"),  # type: ignore[arg-type]
                    message=self._path(ft, "message"),
                )
            )
            ft.finish()
        unique(items, out, "id")
        return tuple(out)

    def _predicate(self, t: _Table, key: str, required: bool = True) -> predicates.Predicate | None:
        t.used.add(key)
        if key not in t.data:
            if required:
                t.problem(key, 'required key is missing: a predicate like { path = "data.status", equals = "failed" }')
            return None
        return predicates.read(self, t.data[key], (*t.path, key))


def _strings(value: Any, keys: tuple[str | int, ...]):
    """(keys, string) for every string in a JSON template."""
    if isinstance(value, str):
        yield keys, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*keys, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*keys, i))
