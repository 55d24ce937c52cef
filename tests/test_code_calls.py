"""Call resolution, one construct at a time: what resolves (and how, how sure) and what is left alone."""

from __future__ import annotations

from cogo.code.parse import parse_file
from cogo.code.resolve import Index, link_file, module_level_calls

FILES = {
    "pkg/__init__.py": "from .base import Store\nfrom . import util as u\n",
    "pkg/base.py": """
class Base:
    def save(self):
        pass

    def load(self):
        return self.save()


class Store(Base):
    def __init__(self):
        self.items = []

    def put(self):
        self.save()
        super().load()
        Store.create()

    @classmethod
    def create(cls):
        return cls.make()

    @classmethod
    def make(cls):
        pass


def helper():
    pass


def only_star():
    pass
""",
    "pkg/sub/__init__.py": "",
    "pkg/sub/deep.py": """
from ..base import helper
from .. import base as b
from ...outside import nothing


def go():
    helper()
    b.Store.create()
    nothing()
""",
    "pkg/util.py": """
import json
import requests as rq
from pkg.base import helper as h
from .base import Store


def top(callback, items):
    h()
    callback()
    s = Store()
    s.put()
    rq.get("x")
    json.dumps(1)
    print(1)
    items.append(1)

    def inner():
        return h()

    inner()


def shadow(helper):
    helper()
""",
    "app.py": """
import pkg.util
import pkg.base as pb
from pkg import Store, u
from pkg.base import *


def main():
    pkg.util.top(1, 2)
    pb.helper()
    Store()
    u.shadow(1)
    only_star()
    unknown_function()
""",
}


def links() -> dict[str, set[tuple[str, str, str, float]]]:
    facts = [parse_file(path, text.encode()) for path, text in FILES.items()]
    index = Index([f for f in facts if f is not None])
    return {f.path: set(link_file(index, f).calls) for f in facts if f is not None}


def test_method_calls_resolve_through_self_cls_super_and_the_bases() -> None:
    assert links()["pkg/base.py"] == {
        ("pkg.base.Base.load", "pkg.base.Base.save", "self", 0.9),
        ("pkg.base.Store.put", "pkg.base.Base.save", "self", 0.9),  # inherited
        ("pkg.base.Store.put", "pkg.base.Base.load", "super", 0.9),
        ("pkg.base.Store.put", "pkg.base.Store.create", "class_attr", 0.95),
        ("pkg.base.Store.create", "pkg.base.Store.make", "self", 0.9),  # cls in a classmethod
    }


def test_calls_resolve_through_imports_aliases_nested_scopes_and_local_types() -> None:
    assert links()["pkg/util.py"] == {
        ("pkg.util.top", "pkg.base.helper", "import", 1.0),  # from-import with an alias
        ("pkg.util.top", "pkg.base.Store.__init__", "constructor", 0.9),  # relative import, class call
        ("pkg.util.top", "pkg.base.Store.put", "local_type", 0.85),  # s = Store(); s.put()
        ("pkg.util.top", "pkg.util.top.inner", "local", 1.0),  # nested function
        ("pkg.util.top.inner", "pkg.base.helper", "import", 1.0),  # enclosing module's import
    }


def test_relative_imports_climb_packages() -> None:
    assert links()["pkg/sub/deep.py"] == {
        ("pkg.sub.deep.go", "pkg.base.helper", "import", 1.0),  # from ..base import helper
        ("pkg.sub.deep.go", "pkg.base.Store.create", "import", 1.0),  # from .. import base as b
    }


def test_module_imports_reexports_and_star_imports_resolve() -> None:
    assert links()["app.py"] == {
        ("app.main", "pkg.util.top", "import", 1.0),  # import pkg.util; pkg.util.top()
        ("app.main", "pkg.base.helper", "import", 1.0),  # import pkg.base as pb; pb.helper()
        ("app.main", "pkg.base.Store.__init__", "constructor", 0.9),  # Store re-exported by pkg/__init__
        ("app.main", "pkg.util.shadow", "import_reexport", 0.95),  # from pkg import u (pkg/__init__: util as u)
        ("app.main", "pkg.base.only_star", "star_import", 0.8),
    }


def test_nothing_is_guessed_by_bare_name() -> None:
    calls = links()
    callees = {callee for edges in calls.values() for _, callee, _, _ in edges}
    # builtins, parameters, attributes of unknown objects, external packages, missing names: no edge
    assert not any(c.endswith((".print", ".callback", ".append", ".get", ".dumps", ".nothing")) for c in callees)
    assert not any(caller == "pkg.util.shadow" for edges in calls.values() for caller, _, _, _ in edges)
    assert not any("unknown_function" in callee for callee in callees)


def test_every_edge_says_how_it_was_resolved_and_how_sure() -> None:
    for edges in links().values():
        for _, _, resolution, confidence in edges:
            assert resolution and 0.0 < confidence <= 1.0


def test_an_import_name_two_files_answer_to_is_not_resolved() -> None:
    files = {
        "scripts/tool.py": "def run():\n    pass\n",
        "tools/tool.py": "def run():\n    pass\n",
        "main.py": "import tool\n\ndef main():\n    tool.run()\n",
    }
    facts = [parse_file(p, t.encode()) for p, t in files.items()]
    index = Index([f for f in facts if f is not None])
    main = next(f for f in facts if f is not None and f.path == "main.py")
    assert link_file(index, main).calls == []


def test_a_src_layout_package_resolves_by_its_import_name() -> None:
    files = {
        "src/lib/__init__.py": "",
        "src/lib/core.py": "def work():\n    pass\n",
        "tests/test_core.py": "from lib.core import work\n\ndef test_it():\n    work()\n",
    }
    facts = [parse_file(p, t.encode()) for p, t in files.items()]
    index = Index([f for f in facts if f is not None])
    test = next(f for f in facts if f is not None and f.path == "tests/test_core.py")
    assert link_file(index, test).calls == [("tests.test_core.test_it", "src.lib.core.work", "import", 1.0)]


def edges_of(files: dict[str, str]) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(caller, callee, resolution) of the functions' calls and of module-level code's calls."""
    facts = [f for path, text in files.items() if (f := parse_file(path, text.encode())) is not None]
    index = Index(facts)
    functions = {(a, b, r) for f in facts for a, b, r, _ in link_file(index, f).calls}
    modules = {(f.module, callee, r) for f in facts for callee, r in module_level_calls(index, f)}
    return functions, modules


def test_methods_resolve_in_python_method_resolution_order() -> None:
    diamond = """
class A:
    def __init__(self):
        pass

    def func(self):
        pass

class B(A):
    pass

class C(A):
    def func(self):
        pass

class D(B, C):
    def run(self):
        self.func()

    def up(self):
        super().func()

class E(External, C):
    def run(self):
        self.func()
        self.own()

    def own(self):
        pass
"""
    functions, modules = edges_of({"m.py": diamond + "d = D()\nd.func()\n", "ext.py": ""})
    # D's MRO is D, B, C, A: C.func, not A.func (depth first would find A.func through B)
    assert ("m.D.run", "m.C.func", "self") in functions
    assert ("m.D.up", "m.C.func", "super") in functions
    assert ("m", "m.C.func", "local_type") in modules and ("m", "m.A.__init__", "constructor") in modules
    # E's first base is unknown: whatever it defines comes first, so only E's own methods resolve
    assert ("m.E.run", "m.E.own", "self") in functions
    assert not any(caller == "m.E.run" and callee.endswith(".func") for caller, callee, _ in functions)


def test_a_name_the_module_assigns_is_a_variable_not_the_definition() -> None:
    code = """
def helper():
    pass

def other():
    pass

helper = other

class Service:
    def ping(self):
        pass

client = Service()

def use():
    helper()
    client.ping()
"""
    functions, modules = edges_of({"m.py": code + "helper()\nuse()\n"})
    assert ("m.use", "m.Service.ping", "local_type") in functions  # client = Service() once
    assert not any(callee == "m.helper" for _, callee, _ in functions | modules)  # rebound: not guessed
    assert ("m", "m.use", "scope") in modules and ("m", "m.Service.__init__", "constructor") not in modules
