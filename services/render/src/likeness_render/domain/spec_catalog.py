"""The spec catalog: specs and paper sizes looked up by id, and spec search."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from likeness_render.domain.specs import Paper, PaperNotFoundError, Spec, SpecNotFoundError

_WORD = re.compile(r"\w+")


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_HasId)


class _ById(Generic[T]):
    """Catalog rows in file order, looked up by id (trimmed, case-insensitive); ids are unique."""

    def __init__(self, rows: Iterable[T], what: str, missing: type[LookupError]) -> None:
        self.rows = tuple(rows)
        self._what = what
        self._missing = missing
        self._by_id = {r.id: r for r in self.rows}
        if len(self._by_id) != len(self.rows):
            dupes = sorted(i for i, n in Counter(r.id for r in self.rows).items() if n > 1)
            raise ValueError(f"duplicate {what} ids: {', '.join(dupes)}")

    def __contains__(self, row_id: object) -> bool:
        return isinstance(row_id, str) and row_id.strip().lower() in self._by_id

    def get(self, row_id: str) -> T:
        try:
            return self._by_id[row_id.strip().lower()]
        except KeyError:
            raise self._missing(f"unknown {self._what} id {row_id!r}") from None


@dataclass(frozen=True)
class Country:
    code: str
    name: str  # the name most rows use for the code (EU has two: first seen wins ties)
    spec_count: int


class Catalog:
    """Specs and paper sizes, looked up by id and searched case-insensitively."""

    def __init__(self, specs: Iterable[Spec], papers: Iterable[Paper] = ()) -> None:
        self._spec_table = _ById(specs, "spec", SpecNotFoundError)
        self._paper_table = _ById(papers, "paper", PaperNotFoundError)
        self._specs = self._spec_table.rows
        self._haystacks: dict[str, str] = {}
        self._words: dict[str, tuple[str, ...]] = {}
        for s in self._specs:
            haystack = " ".join((s.id, s.country_code, s.country, s.document, s.notes or "")).casefold()
            self._haystacks[s.id] = haystack
            self._words[s.id] = tuple(_WORD.findall(haystack))

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self._specs)

    def __contains__(self, spec_id: object) -> bool:
        return spec_id in self._spec_table

    @property
    def specs(self) -> tuple[Spec, ...]:
        return self._specs

    def get(self, spec_id: str) -> Spec:
        return self._spec_table.get(spec_id)

    def search(
        self,
        country: str | None = None,
        document: str | None = None,
        text: str | None = None,
    ) -> tuple[Spec, ...]:
        """Specs matching every given filter, in catalog order.

        ``country`` equals the code or the country name; ``document`` is a substring of
        the document name; ``text`` is split on whitespace and every word must start a
        word of the id, country code, country, document or notes (so "us" finds US specs
        but not "Austria"). Words in scripts written without spaces (CJK) match anywhere.
        All case-insensitive.
        """
        country_key = country.strip().casefold() if country else None
        document_key = document.strip().casefold() if document else None
        terms = text.casefold().split() if text else []
        out = []
        for s in self._specs:
            if country_key and country_key not in (
                s.country_code.casefold(),
                s.country.casefold(),
            ):
                continue
            if document_key and document_key not in s.document.casefold():
                continue
            if not all(self._matches(s.id, term) for term in terms):
                continue
            out.append(s)
        return tuple(out)

    def _matches(self, spec_id: str, term: str) -> bool:
        if not term.isascii():
            return term in self._haystacks[spec_id]
        return any(word.startswith(term) for word in self._words[spec_id]) or (
            # a term with punctuation ("35x45", "e-visa") is looked up as typed
            not term.isalnum() and term in self._haystacks[spec_id]
        )

    def countries(self) -> tuple[Country, ...]:
        """Every country code with specs, sorted by code."""
        names: dict[str, Counter[str]] = {}
        for s in self._specs:
            names.setdefault(s.country_code, Counter())[s.country] += 1
        return tuple(Country(code, counts.most_common(1)[0][0], sum(counts.values())) for code, counts in sorted(names.items()))

    def papers(self) -> tuple[Paper, ...]:
        return self._paper_table.rows

    def paper(self, paper_id: str) -> Paper:
        return self._paper_table.get(paper_id)
