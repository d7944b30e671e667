"""A service's feature flags as one source sees them: a mapping over its profile's flags.

Which flags exist, how the service reads a value and how the console writes one are the
profile's (``FlagRules``); this module only holds values against them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from console.profile.model import Flag, FlagRules


class FlagSet(Mapping[str, bool]):
    """Each of the profile's flags, by id, on or off; ordered as the profile lists them."""

    __slots__ = ("_values", "rules")

    def __init__(self, rules: FlagRules, values: Mapping[str, bool]) -> None:
        unknown = set(values) - set(rules.ids)
        missing = [i for i in rules.ids if i not in values]
        if unknown or missing:
            raise ValueError(f"flags {sorted(unknown)} unknown, {missing} missing for flags {list(rules.ids)}")
        self.rules = rules
        self._values = tuple(bool(values[i]) for i in rules.ids)

    @classmethod
    def from_environ(cls, rules: FlagRules, environ: Mapping[str, str | None]) -> FlagSet:
        """The values the service reads from these variables (an env file's or a process's)."""
        return cls(rules, rules.read_environ(environ))

    @classmethod
    def every(cls, rules: FlagRules, on: bool) -> FlagSet:
        return cls(rules, dict.fromkeys(rules.ids, on))

    def __getitem__(self, flag_id: str) -> bool:
        try:
            return self._values[self.rules.ids.index(flag_id)]
        except ValueError:
            raise KeyError(flag_id) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.rules.ids)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FlagSet):
            return self.rules.ids == other.rules.ids and self._values == other._values
        return super().__eq__(other)

    def __hash__(self) -> int:
        return hash((self.rules.ids, self._values))

    def __repr__(self) -> str:
        return f"FlagSet({self.as_dict()!r})"

    @property
    def flags(self) -> tuple[Flag, ...]:
        return self.rules.flags

    def replace(self, **values: bool) -> FlagSet:
        return FlagSet(self.rules, {**self.as_dict(), **values})

    def as_dict(self) -> dict[str, bool]:
        return dict(zip(self.rules.ids, self._values, strict=True))

    def by_env(self) -> dict[str, bool]:
        """Each value under its variable's name."""
        return {f.env: v for f, v in zip(self.rules.flags, self._values, strict=True)}

    def as_env(self) -> dict[str, str]:
        """The variables as the console writes them."""
        return {f.env: self.rules.written(v) for f, v in zip(self.rules.flags, self._values, strict=True)}

    def effective(self) -> dict[str, bool]:
        """What acts: a flag whose master (or any flag it depends on) is off does nothing."""
        return self.rules.effective(self.as_dict())

    def describe(self) -> str:
        return ", ".join(f"{f.label}: {v}" for f, v in zip(self.rules.flags, self._values, strict=True))

    def bits(self) -> str:
        """One digit per flag, in the profile's order ("101")."""
        return "".join("1" if v else "0" for v in self._values)
