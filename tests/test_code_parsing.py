"""Parsing each language to facts: files, classes, functions, imports and same-file calls."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from cogo.code.facts import FileFacts
from cogo.code.parse import DEFAULT_SIZE_LIMIT, parse_file
from cogo.code.parse_pool import parse_blobs
from cogo.code.resolve import Index, link_file

PYTHON = b'''"""Tokens for the API.

Longer text."""
import os.path
import jwt as j
from ..core import base
from . import sibling as sib


@register("token")
class TokenService(Base):
    """Issues tokens."""

    @staticmethod
    def refresh(token: str, *, ttl: int = 60) -> str:
        """Refresh it."""

        def sign(value):
            return j.encode(value)

        return sign(token)

    @property
    def name(self):
        return "t"

    @name.setter
    def name(self, value):
        pass
'''


def symbols(facts: FileFacts) -> dict[str, tuple]:
    return {s.qualified_name: (s.kind, s.parent, s.signature, s.docstring, s.is_method) for s in facts.symbols}


def test_python_definitions_decorators_docstrings_and_imports() -> None:
    facts = parse_file("api/tokens.py", PYTHON)
    assert facts is not None and facts.module == "api.tokens" and facts.summary == "Tokens for the API."
    assert symbols(facts) == {
        "api.tokens.TokenService": ("class", None, None, "Issues tokens.", False),
        "api.tokens.TokenService.refresh": (
            "function",
            "api.tokens.TokenService",
            "(token: str, *, ttl: int = 60) -> str",
            "Refresh it.",
            True,
        ),
        "api.tokens.TokenService.refresh.sign": ("function", "api.tokens.TokenService.refresh", "(value)", None, False),
        "api.tokens.TokenService.name": ("function", "api.tokens.TokenService", "(self)", None, True),
    }
    by_name = {s.qualified_name: s for s in facts.symbols}
    assert by_name["api.tokens.TokenService"].decorators == ['register("token")']
    assert by_name["api.tokens.TokenService.refresh"].decorators == ["staticmethod"]
    assert by_name["api.tokens.TokenService"].start_line == 10  # the decorator's line
    assert [(i.module, i.name, i.alias, i.level) for i in facts.imports] == [
        ("os.path", None, None, 0),
        ("jwt", None, "j", 0),
        ("core", "base", None, 2),
        ("", "sibling", "sib", 1),
    ]


@pytest.mark.parametrize(
    "literal",
    [
        '"""Plain."""',
        "'''Single quotes, \"inner\" ones.'''",
        '"One line."',
        "'One line.'",
        '"""Tab\\tand\\nescapes."""',
        'r"""Raw \\d+."""',
        'b"""Bytes."""',
        '"""\n    Indented\n        more\n    """',
        'u"Prefixed."',
    ],
)
def test_docstrings_read_as_python_reads_them(literal: str) -> None:
    facts = parse_file("m.py", f"def f():\n    {literal}\n".encode())
    assert facts is not None
    value = ast.literal_eval(literal)
    expected = inspect.cleandoc(value.decode() if isinstance(value, bytes) else value)
    assert facts.symbols[0].docstring == expected


def test_calls_at_the_same_place_come_in_one_order() -> None:
    """`super().save()` holds two calls starting at the same byte; their order does not depend on the
    order tree-sitter reports them in."""
    source = b"class A(B):\n    def save(self):\n        super().save()\n        self.done()\n"
    for _ in range(5):
        facts = parse_file("m.py", source)
        assert facts is not None
        assert {s.name: s.calls for s in facts.symbols}["save"] == [["super"], ["super()", "save"], ["self", "done"]]


def test_forked_workers_parse_the_same_facts() -> None:
    root = Path(__file__).resolve().parent.parent
    blobs = [(str(p.relative_to(root)), "", p.read_bytes()) for p in sorted((root / "cogo").rglob("*.py"))]
    alone, by_children = parse_blobs(blobs, DEFAULT_SIZE_LIMIT, workers=1, min_bytes=0)
    assert by_children == 0
    together, by_children = parse_blobs(blobs, DEFAULT_SIZE_LIMIT, workers=3, min_bytes=0)
    assert 0 < by_children < len(blobs)
    assert [f.to_json() for f in together if f] == [f.to_json() for f in alone if f]
    assert len(together) == len(alone) == len(blobs)


def test_code_hash_changes_with_the_code_only() -> None:
    a = parse_file("m.py", b"def f():\n    return 1\n\n\ndef g():\n    return 2\n")
    b = parse_file("m.py", b"# moved down\n\ndef f():\n    return 1\n\n\ndef g():\n    return 3\n")
    assert a is not None and b is not None
    hashes_a = {s.name: s.code_hash for s in a.symbols}
    hashes_b = {s.name: s.code_hash for s in b.symbols}
    assert hashes_a["f"] == hashes_b["f"] and hashes_a["g"] != hashes_b["g"]


def test_syntax_errors_are_counted_and_the_valid_parts_kept() -> None:
    facts = parse_file("bad.py", b"def ok():\n    return 1\n\ndef bad(:\n    pass\n")
    assert facts is not None and facts.parse_errors == 1
    assert "bad.ok" in {s.qualified_name for s in facts.symbols}


def test_binary_large_and_non_code_files() -> None:
    assert parse_file("logo.png", b"\x89PNG") is None
    binary = parse_file("x.py", b"\x00\x01" * 10)
    assert binary is not None and binary.skipped == "binary" and binary.symbols == []
    large = parse_file("big.py", b"x = 1\n" * 100, size_limit=100)
    assert large is not None and large.skipped == "too_large"
    latin = parse_file("l.py", b"# caf\xe9\ndef f():\n    return '\xe9'\n")
    assert latin is not None and [s.name for s in latin.symbols] == ["f"]


JS = b"""// Shop helpers.
import React, { useState as us } from "react";
import * as utils from "./utils";
const fs = require("fs");

/** Adds two numbers. */
export function add(a, b) { return a + b; }

const twice = (x) => add(x, x);

class Cart extends Base {
  total() { return this.sum() + add(1, 2); }
  sum() { return 0; }
}
"""

TS = b"""import { add } from "./shop";
export abstract class Repo<T> {
  find(id: string): T | undefined { return this.load(id); }
  load(id: string): T | undefined { return undefined; }
}
export function use(): number { return add(1, 2); }
"""

GO = b"""// Package server serves.
package server

import (
  "fmt"
  h "net/http"
  "github.com/acme/app/internal/db"
)

type Server struct { addr string }

// Start starts.
func (s *Server) Start() error { s.listen(); fmt.Println("x"); return helper() }
func (s *Server) listen() {}
func helper() error { return nil }
"""

JAVA = b"""package com.acme;
import java.util.List;
/** A service. */
public class Service {
  public Service() { init(); }
  private void init() { this.load(); }
  void load() { }
}
"""


def parsed() -> dict[str, FileFacts]:
    files = {"web/shop.js": JS, "web/repo.ts": TS, "srv/server.go": GO, "src/com/acme/Service.java": JAVA}
    return {path: facts for path, data in files.items() if (facts := parse_file(path, data)) is not None}


def test_javascript_and_typescript() -> None:
    files = parsed()
    shop, repo = files["web/shop.js"], files["web/repo.ts"]
    assert shop.summary == "Shop helpers."
    assert symbols(shop) == {
        "web.shop.add": ("function", None, "(a, b)", "Adds two numbers.", False),
        "web.shop.twice": ("function", None, "(x)", None, False),
        "web.shop.Cart": ("class", None, None, None, False),
        "web.shop.Cart.total": ("function", "web.shop.Cart", "()", None, True),
        "web.shop.Cart.sum": ("function", "web.shop.Cart", "()", None, True),
    }
    assert [(i.module, i.name, i.alias) for i in shop.imports] == [
        ("react", "default", "React"),
        ("react", "useState", "us"),
        ("./utils", None, "utils"),
        ("fs", None, None),
    ]
    assert symbols(repo)["web.repo.Repo.find"] == (
        "function",
        "web.repo.Repo",
        "(id: string): T | undefined",
        None,
        True,
    )
    index = Index(files.values())
    assert set(link_file(index, shop).calls) == {
        ("web.shop.twice", "web.shop.add", "same_file", 1.0),
        ("web.shop.Cart.total", "web.shop.Cart.sum", "this", 0.9),
        ("web.shop.Cart.total", "web.shop.add", "same_file", 1.0),
    }
    assert set(link_file(index, repo).calls) == {
        ("web.repo.Repo.find", "web.repo.Repo.load", "this", 0.9),
        ("web.repo.use", "web.shop.add", "import", 1.0),
    }
    assert link_file(index, shop).libraries == {"react": "React", "fs": None}


def test_go() -> None:
    files = parsed()
    server = files["srv/server.go"]
    assert server.summary == "Package server serves."
    assert symbols(server) == {
        "srv.server.Server": ("class", None, None, None, False),
        "srv.server.Server.Start": ("function", "srv.server.Server", "() error", "Start starts.", True),
        "srv.server.Server.listen": ("function", "srv.server.Server", "()", None, True),
        "srv.server.helper": ("function", None, "() error", None, False),
    }
    index = Index(files.values(), go_module="github.com/acme/app")
    links = link_file(index, server)
    assert set(links.calls) == {
        ("srv.server.Server.Start", "srv.server.Server.listen", "self", 0.9),
        ("srv.server.Server.Start", "srv.server.helper", "same_file", 1.0),
    }
    # the repository's own module is not a library
    assert links.libraries == {"fmt": None, "net/http": "h"}
    assert ("srv.server.Server.Start", "fmt") in links.uses


def test_java() -> None:
    files = parsed()
    service = files["src/com/acme/Service.java"]
    assert symbols(service) == {
        "src.com.acme.Service.Service": ("class", None, None, "A service.", False),
        "src.com.acme.Service.Service.Service": ("function", "src.com.acme.Service.Service", "()", None, True),
        "src.com.acme.Service.Service.init": ("function", "src.com.acme.Service.Service", "void ()", None, True),
        "src.com.acme.Service.Service.load": ("function", "src.com.acme.Service.Service", "void ()", None, True),
    }
    assert [(i.module, i.name) for i in service.imports] == [("java.util", "List")]
    assert set(link_file(Index(files.values()), service).calls) == {
        ("src.com.acme.Service.Service.Service", "src.com.acme.Service.Service.init", "this", 0.9),
        ("src.com.acme.Service.Service.init", "src.com.acme.Service.Service.load", "this", 0.9),
    }
