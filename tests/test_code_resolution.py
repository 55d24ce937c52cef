"""Calls resolved by following values (cogo.code.flow): one test per resolution kind, each on the smallest
code that needs it, then the same kinds read back from the graph on both backends."""

from __future__ import annotations

from pathlib import Path

import psycopg

from cogo.code.builder import build_repository
from cogo.code.parse import parse_file
from cogo.code.resolve import CERTAIN, Index, link_file
from cogo.graph.base import GraphStore
from tests.code_repos import Repo

Edge = tuple[str, str, str]


def calls(files: dict[str, str]) -> set[Edge]:
    facts = [f for path, text in files.items() if (f := parse_file(path, text.encode())) is not None]
    index = Index(facts)
    return {(a, b, r) for f in facts for a, b, r, _ in link_file(index, f).calls}


ANNOTATION = """
class App:
    def run(self):
        pass

class Server:
    def __init__(self, app: App):
        self.app = app

    def serve(self):
        self.app.run()

def each(apps: "list[App]"):
    for app in apps:
        app.run()
"""

CLASS_OBJECT = """
class Model:
    def __init__(self, data):
        self.data = data

    @classmethod
    def load(cls, data):
        return cls(data)

    def copy(self):
        return self.__class__(self.data)
"""

CLASS_ATTRIBUTE = """
class JSONProvider:
    def __init__(self, app):
        self.app = app

class App:
    json_provider_class = JSONProvider

    def __init__(self):
        self.json = self.json_provider_class(self)
"""

RETURN_TYPE = """
class RequestContext:
    def push(self):
        pass

class Annotated:
    def pop(self):
        pass

class App:
    def request_context(self, environ):
        return RequestContext()

    def annotated(self) -> "Annotated":
        return make()

    def wsgi_app(self, environ):
        ctx = self.request_context(environ)
        ctx.push()
        other = self.annotated()
        other.pop()
"""

OVERRIDE = """
class Base:
    def render(self):
        return self.body()

    def body(self):
        return ""

    def run(self):
        self.hook()

class Page(Base):
    def body(self):
        return "page"

    def hook(self):
        pass
"""

PARAMETER = """
def on_done():
    pass

def on_error():
    pass

def run(callback, errback=None):
    callback()
    errback()

def main():
    run(on_done, errback=on_error)
"""

CONTAINER = """
def load_json():
    pass

def load_csv():
    pass

LOADERS = {"json": load_json, "csv": load_csv}

def load(kind):
    return LOADERS[kind]()

def load_json_only():
    return LOADERS["json"]()
"""

DECORATOR = """
def logged(f):
    def wrapper():
        return f()
    return wrapper

@logged
def work():
    pass

def main():
    work()
"""

ASSIGNMENT = """
def fast():
    pass

def pick():
    chosen = fast
    chosen()
"""

ITERATION = """
class Rows:
    def __iter__(self):
        return self

    def __next__(self):
        raise StopIteration

def total(rows: Rows):
    for row in rows:
        pass
"""


def test_methods_of_annotated_parameters_attributes_and_loop_variables_resolve() -> None:
    edges = calls({"m.py": ANNOTATION})
    assert ("m.Server.serve", "m.App.run", "annotation") in edges  # self.app = app, app: App
    assert ("m.each", "m.App.run", "annotation") in edges  # for app in apps: list[App]


def test_cls_and_self_class_calls_resolve_to_the_constructor() -> None:
    edges = calls({"m.py": CLASS_OBJECT})
    assert ("m.Model.load", "m.Model.__init__", "class_object") in edges
    assert ("m.Model.copy", "m.Model.__init__", "class_object") in edges


def test_a_class_held_in_a_class_attribute_and_called_resolves_to_its_constructor() -> None:
    assert ("m.App.__init__", "m.JSONProvider.__init__", "constructor") in calls({"m.py": CLASS_ATTRIBUTE})


def test_locals_assigned_from_a_call_take_its_return_type() -> None:
    edges = calls({"m.py": RETURN_TYPE})
    assert ("m.App.wsgi_app", "m.RequestContext.push", "return_type") in edges  # returns a constructor
    assert ("m.App.wsgi_app", "m.Annotated.pop", "return_type") in edges  # `-> "Annotated"`


def test_self_calls_reach_subclass_definitions_and_overrides_with_a_lower_confidence() -> None:
    edges = calls({"m.py": OVERRIDE})
    assert ("m.Base.render", "m.Base.body", "self") in edges
    assert ("m.Base.render", "m.Page.body", "override") in edges  # overridden in the subclass
    assert ("m.Base.run", "m.Page.hook", "override") in edges  # defined only in the subclass


def test_functions_passed_as_arguments_and_keywords_are_followed() -> None:
    edges = calls({"m.py": PARAMETER})
    assert {("m.run", "m.on_done", "parameter"), ("m.run", "m.on_error", "parameter")} <= edges


def test_functions_stored_in_a_table_are_called_by_key() -> None:
    edges = calls({"m.py": CONTAINER})
    assert {("m.load", "m.load_json", "container"), ("m.load", "m.load_csv", "container")} <= edges
    assert ("m.load_json_only", "m.load_json", "container") in edges
    assert not any(a == "m.load_json_only" and b == "m.load_csv" for a, b, _ in edges)  # the key is known


def test_a_decorated_function_is_called_through_what_the_decorator_returns() -> None:
    edges = calls({"m.py": DECORATOR})
    assert ("m.main", "m.logged.wrapper", "decorator") in edges
    assert ("m.logged.wrapper", "m.work", "parameter") in edges
    assert not any(a == "m.main" and b == "m.work" for a, b, _ in edges)


def test_a_function_assigned_to_a_local_is_followed() -> None:
    assert ("m.pick", "m.fast", "assignment") in calls({"m.py": ASSIGNMENT})


def test_a_for_loop_calls_the_iterator_methods() -> None:
    edges = calls({"m.py": ITERATION})
    assert ("m.total", "m.Rows.__iter__", "iteration") in edges
    assert ("m.total", "m.Rows.__next__", "iteration") in edges


def test_values_flow_across_modules() -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/hooks.py": "def run(callback):\n    callback()\n",
        "pkg/main.py": "from pkg.hooks import run\n\ndef done():\n    pass\n\ndef main():\n    run(done)\n",
    }
    assert ("pkg.hooks.run", "pkg.main.done", "parameter") in calls(files)


# One edge of each kind, by snippet: (source, caller, callee, resolution).
KINDS = [
    (ANNOTATION, "m.Server.serve", "m.App.run", "annotation"),
    (CLASS_OBJECT, "m.Model.load", "m.Model.__init__", "class_object"),
    (CLASS_ATTRIBUTE, "m.App.__init__", "m.JSONProvider.__init__", "constructor"),
    (RETURN_TYPE, "m.App.wsgi_app", "m.RequestContext.push", "return_type"),
    (OVERRIDE, "m.Base.render", "m.Page.body", "override"),
    (PARAMETER, "m.run", "m.on_done", "parameter"),
    (CONTAINER, "m.load", "m.load_json", "container"),
    (DECORATOR, "m.main", "m.logged.wrapper", "decorator"),
    (ASSIGNMENT, "m.pick", "m.fast", "assignment"),
    (ITERATION, "m.total", "m.Rows.__iter__", "iteration"),
]


def _calls_in_graph(graph: GraphStore, repo: str, min_confidence: float = 0.0) -> dict[tuple[str, str], str]:
    rows = graph.query(
        "MATCH (a:Function)-[r:CALLS]->(b:Function) WHERE a.repo = $repo AND r.confidence >= $c "
        "RETURN a.qualified_name AS a, b.qualified_name AS b, r.resolution AS r",
        {"repo": repo, "c": min_confidence},
    )
    return {(row["a"], row["b"]): row["r"] for row in rows}


def test_the_graph_keeps_each_kind_and_a_query_can_ask_for_the_certain_calls_only(
    graph: GraphStore, db: psycopg.Connection, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    for i, (source, _, _, _) in enumerate(KINDS):
        repo.write(f"k{i}/m.py", source)
    repo.commit("every kind")
    build_repository(str(repo.path), graph, db)
    found = _calls_in_graph(graph, str(repo.path))
    for i, (_, caller, callee, kind) in enumerate(KINDS):
        assert found.get((f"k{i}.{caller}", f"k{i}.{callee}")) == kind
    certain = _calls_in_graph(graph, str(repo.path), CERTAIN)
    assert ("k4.m.Base.render", "k4.m.Base.body") in certain  # through self, in the class itself
    assert ("k4.m.Base.render", "k4.m.Page.body") not in certain  # class-hierarchy analysis
    assert {kind for kind in certain.values()} <= {"self", "constructor", "class_object", "local", "scope", "import"}


def test_a_new_caller_moves_the_calls_of_a_file_it_does_not_change(
    graph: GraphStore, db: psycopg.Connection, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("hooks.py", "def run(callback):\n    callback()\n")
    repo.write("a.py", "from hooks import run\n\ndef first():\n    pass\n\ndef main():\n    run(first)\n")
    repo.commit("one caller")
    build_repository(str(repo.path), graph, db)
    assert _calls_in_graph(graph, str(repo.path)).get(("hooks.run", "a.first")) == "parameter"
    # hooks.py imports nothing that changes, yet what its parameter holds does.
    repo.write("b.py", "from hooks import run\n\ndef second():\n    pass\n\ndef main():\n    run(second)\n")
    repo.commit("another caller")
    build_repository(str(repo.path), graph, db)
    found = _calls_in_graph(graph, str(repo.path))
    assert found.get(("hooks.run", "b.second")) == "parameter" and ("hooks.run", "a.first") in found
    (repo.path / "b.py").unlink()
    repo.commit("the caller goes")
    build_repository(str(repo.path), graph, db)
    assert ("hooks.run", "b.second") not in _calls_in_graph(graph, str(repo.path))
