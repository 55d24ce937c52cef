"""Value flow over a Python snapshot: which functions, classes and instances each name can hold, and so which
functions a call can reach where the name it goes through is a parameter, a variable, an attribute, a table
entry or a decorated function (the approach of PyCG's assignment graph, with declared types).

Flow-insensitive and field-based, like PyCG: a variable is a function's local or parameter (`m.f.x`), a
module-level name (`m.x`), a class or instance attribute (`m.C.x`, whatever instance), a function's return
(`m.f.<return>`) or a container's entry (`K:…[key]`). Values are `F:q` (a function), `B:q` (a method bound
to its instance), `C:q` (a class), `I:q` (an instance of it), `E:q` (a container of its instances, from a
declared type), `L:…` (a literal), `K:…` (a container), `M:m` (a module). Each value carries how it was
learnt (a resolution kind); a value learnt two ways keeps the surer one. The statements of every scope are
evaluated until nothing changes, then once more recording the calls.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cogo.code.facts import FileFacts, Symbol

if TYPE_CHECKING:
    from cogo.code.resolve import Index

# How sure an edge is, by how its callee was learnt ("" : through definitions and imports only).
KIND_CONFIDENCE = {
    "": 1.0,
    "self": 0.9,
    "class_object": 0.9,
    "constructor": 0.9,
    "annotation": 0.85,
    "local_type": 0.85,
    "return_type": 0.85,
    "assignment": 0.85,
    "decorator": 0.85,
    "parameter": 0.8,
    "iteration": 0.8,
    "container": 0.75,
    "override": 0.6,
}
MAX_ROUNDS = 12
RETURN = "<return>"
# Generic types whose parameter is what iterating or indexing them gives.
_CONTAINER_TYPES = {
    "list", "List", "set", "Set", "frozenset", "FrozenSet", "tuple", "Tuple", "Sequence", "MutableSequence",
    "Iterable", "Iterator", "Collection", "AbstractSet", "MutableSet", "Generator", "deque", "Deque",
}  # fmt: skip
_WRAPPERS = {"Optional", "Union", "Annotated", "Final", "ClassVar", "Type", "type"}
_TYPE_NAME = re.compile(r"[A-Za-z_][\w.]*")

Values = dict[str, str]  # value -> resolution kind


def weaker(a: str, b: str) -> str:
    """The less sure of two kinds (a value's kind after a step of kind b)."""
    return b if KIND_CONFIDENCE[b] <= KIND_CONFIDENCE[a] else a


class Flow:
    def __init__(self, index: Index):
        self.index = index
        self.vars: dict[str, Values] = {}
        self.recording: dict[str, dict[str, str]] = {}  # caller -> callee -> kind
        self.decorated: dict[str, Values] = {}  # function -> what its name holds once decorated
        self._pending: set[str] = set()  # functions a decorator rebinds (their name reads the rebinding)
        self._readers: dict[str, set[int]] = {}  # var -> statements that read it
        self._reading: int = -1  # the statement being evaluated
        self._queue: list[int] = []
        self._queued: set[int] = set()
        self._subclasses: dict[str, list[str]] | None = None
        self._containers: dict[int, str] = {}
        self._annotations: dict[tuple[str, str], list[str]] = {}
        self.files = [f for f in index.files.values() if f.language == "python" and not f.skipped]
        self._run()

    # -- the fixpoint ---------------------------------------------------------------------------------

    def _statements(self) -> list[tuple[FileFacts, Symbol | None, list[Any]]]:
        """Every scope's statements, and each function's calls without arguments (to be recorded)."""
        statements: list[tuple[FileFacts, Symbol | None, list[Any]]] = []
        for facts in self.files:
            statements.extend((facts, None, statement) for statement in facts.module_flows)
            for symbol in facts.symbols:
                statements.extend((facts, symbol, ["t", [name], text]) for name, text in symbol.param_types.items())
                statements.extend((facts, symbol, statement) for statement in symbol.flows)
        self._pending = {statement[1] for _, _, statement in statements if statement[0] == "d"}
        rebound = {qname.rsplit(".", 1)[-1] for qname in self._pending}
        for facts in self.files:
            for symbol in facts.symbols:
                if symbol.kind != "function":
                    continue
                # A call through a definition or an import without arguments is resolve.py's alone: the
                # flow adds nothing to it unless a decorator rebinds the name.
                statements.extend(
                    (facts, symbol, ["call", parts])
                    for parts in symbol.calls
                    if parts[-1] in rebound or parts[0] in facts.module_names or self._through_value(symbol, parts)
                )
        return statements

    def _through_value(self, symbol: Symbol, parts: list[str]) -> bool:
        """A call whose name is a parameter or local of the function or of one enclosing it."""
        current: Symbol | None = symbol
        while current is not None and current.kind == "function":
            if parts[0] in current.local_names:
                return True
            current = self.index.symbols.get(current.parent) if current.parent else None
        return False

    def _run(self) -> None:
        """A worklist: each statement once, then again whenever a variable it read gains a value (values
        only grow, so this ends, and the calls recorded at each evaluation add up to the last one's)."""
        statements = self._statements()
        self._queue = list(range(len(statements) - 1, -1, -1))
        self._queued = set(self._queue)
        while self._queue:
            position = self._queue.pop()
            self._queued.discard(position)
            self._reading = position
            facts, scope, statement = statements[position]
            self.execute(facts, scope, statement)
        self._reading = -1
        # A decorator of the repository whose result stayed unknown leaves the function's name as it is.
        for qname in self._pending:
            held = self.vars.get(f"<decorated>.{qname}")
            if held and held != self.definition(qname, rebound=False):
                self.decorated[qname] = held

    def read(self, var: str) -> Values:
        """A variable's values, noting that the statement being evaluated depends on it."""
        if self._reading >= 0:
            self._readers.setdefault(var, set()).add(self._reading)
        return self.vars.get(var) or {}

    def add(self, var: str, values: Values) -> None:
        if not values:
            return
        held = self.vars.setdefault(var, {})
        changed = False
        for value, kind in values.items():
            before = held.get(value)
            if before is None or (before != kind and KIND_CONFIDENCE[kind] > KIND_CONFIDENCE[before]):
                held[value] = kind
                changed = True
        if changed:
            for reader in self._readers.get(var, ()):
                if reader not in self._queued:
                    self._queued.add(reader)
                    self._queue.append(reader)

    # -- statements -----------------------------------------------------------------------------------

    def execute(self, facts: FileFacts, scope: Symbol | None, statement: list[Any]) -> None:
        op = statement[0]
        if op == "=":
            self.assign(facts, scope, statement[1], self.eval(facts, scope, statement[2]))
        elif op == "t":
            self.assign(facts, scope, statement[1], self.annotation(facts, statement[2]))
        elif op == "r":
            if scope is not None and scope.kind == "function":
                self.add(f"{scope.qualified_name}.{RETURN}", self.eval(facts, scope, statement[1]))
        elif op == "c":
            self.eval(facts, scope, statement[1])
        elif op == "for":
            items = self.iterate(facts, scope, self.eval(facts, scope, statement[2]))
            if statement[1]:
                self.assign(facts, scope, [statement[1]], items)
        elif op == "d":
            self.decorate(facts, scope, statement[1], statement[2])
        elif op == "call":
            self.call_values(facts, scope, self.name(facts, scope, statement[1]), record=True)

    def decorate(self, facts: FileFacts, scope: Symbol | None, qname: str, decorators: list[Any]) -> None:
        """The name of a decorated function holds what its decorators return; a decorator outside the
        repository (or one whose result is unknown) leaves the function as it is."""
        undecorated = self.definition(qname, rebound=False)
        held = undecorated
        for decorator in reversed(decorators):
            callees = self.eval(facts, scope, decorator)
            if not any(value[0] in "FBCI" for value in callees):
                continue
            applied = self.call_values(facts, scope, callees, args=[held], record=True)
            # Empty until the decorator's returns are known (a later round); see _run for one that stays so.
            held = {value: weaker(kind, "decorator") for value, kind in applied.items()}
        self.add(f"<decorated>.{qname}", held)

    def assign(self, facts: FileFacts, scope: Symbol | None, target: list[str], values: Values) -> None:
        if not values:
            return
        if len(target) == 1:
            var = self.local_var(facts, scope, target[0])
            if var is not None:
                self.add(var, values)
            return
        for owner in self.name(facts, scope, target[:-1]):
            if owner[0] in "ICM":
                self.add(f"{owner[2:]}.{target[-1]}", values)

    def local_var(self, facts: FileFacts, scope: Symbol | None, name: str) -> str | None:
        if scope is None:
            return f"{facts.module}.{name}"
        if scope.kind == "class" or name in scope.local_names:
            return f"{scope.qualified_name}.{name}"
        return None  # `global`/`nonlocal` targets are not followed

    # -- expressions ----------------------------------------------------------------------------------

    def eval(self, facts: FileFacts, scope: Symbol | None, expr: Any) -> Values:
        if expr is None:
            return {}
        op = expr[0]
        if op == "n":
            return self.name(facts, scope, expr[1])
        if op == "c":
            callee = self.eval(facts, scope, expr[1])
            args = [self.eval(facts, scope, a) for a in expr[2]]
            kwargs = {k: self.eval(facts, scope, v) for k, v in expr[3].items()}
            return self.call_values(facts, scope, callee, args, kwargs, record=True)
        if op == "l":
            return {f"L:{expr[1]!r}": ""}
        if op == "k":
            return {self.container(facts, scope, expr): ""}
        if op == "s":
            return self.subscript(self.eval(facts, scope, expr[1]), self.eval(facts, scope, expr[2]))
        if op == "a":
            return self.attribute(self.eval(facts, scope, expr[1]), expr[2])
        if op == "u":
            merged: Values = {}
            for item in expr[1]:
                merged.update(self.eval(facts, scope, item))
            return merged
        return {}

    def container(self, facts: FileFacts, scope: Symbol | None, expr: list[Any]) -> str:
        key = self._containers.get(id(expr))
        if key is None:
            key = self._containers[id(expr)] = f"K:{facts.path}#{len(self._containers)}"
        for key_expr, value_expr in expr[1]:
            values = self.eval(facts, scope, value_expr)
            for literal in self.eval(facts, scope, key_expr):
                if literal.startswith("L:"):
                    self.add(f"{key}[{literal}]", values)
            self.add(f"{key}[]", values)
        return key

    def subscript(self, objects: Values, keys: Values) -> Values:
        literals = [k for k in keys if k.startswith("L:")]
        found: Values = {}
        for value, kind in objects.items():
            if value.startswith("K:"):
                slots = [f"{value}[{k}]" for k in literals] if literals else [f"{value}[]"]
                for slot in slots:
                    for item, item_kind in self.read(slot).items():
                        found[item] = weaker(weaker(kind, item_kind), "container")
            elif value.startswith("E:"):
                found[f"I:{value[2:]}"] = weaker(kind, "annotation")
        return found

    def iterate(self, facts: FileFacts, scope: Symbol | None, values: Values) -> Values:
        """What a `for` loop's target takes: a container's entries, a declared container's items, or what
        an instance's `__iter__` and `__next__` give (both are called)."""
        found: Values = {}
        for value, kind in values.items():
            if value.startswith("K:"):
                for item, item_kind in self.read(f"{value}[]").items():
                    found[item] = weaker(weaker(kind, item_kind), "container")
            elif value.startswith("E:"):
                found[f"I:{value[2:]}"] = weaker(kind, "annotation")
            elif value.startswith("I:"):
                iterating = {value: weaker(kind, "iteration")}
                iterators = self.call_values(facts, scope, self.attribute(iterating, "__iter__"), record=True)
                iterators = {v: weaker(k, "iteration") for v, k in iterators.items()}
                found.update(self.call_values(facts, scope, self.attribute(iterators, "__next__"), record=True))
        return found

    def name(self, facts: FileFacts, scope: Symbol | None, parts: list[str]) -> Values:
        head = parts[0]
        if head == "super()":
            return {}
        values = self.lookup(facts, scope, head)
        for attr in parts[1:]:
            if not values:
                break
            values = self.attribute(values, attr)
        return values

    def lookup(self, facts: FileFacts, scope: Symbol | None, name: str) -> Values:
        index = self.index
        current = scope
        while current is not None:
            nested = f"{current.qualified_name}.{name}"
            if current.kind == "function":
                if nested in index.symbols:
                    return self.definition(nested)
                if name in current.local_names:
                    found = dict(self.read(nested))
                    if current.is_method and name == current.first_param:
                        found.update(self.receiver(current))
                    return found
            elif current is scope:  # a class body's own names; methods do not see them
                if nested in index.symbols:
                    return self.definition(nested)
                if name in current.local_names:
                    return dict(self.read(nested))
            current = index.symbols.get(current.parent) if current.parent else None
        module = facts.module
        var = f"{module}.{name}"
        if name in facts.module_names:
            return dict(self.read(var))
        if var in index.symbols and index.symbols[var].parent is None:
            return self.definition(var)
        target = index.bindings(module).get(name)
        return self.dotted(target) if target else {}

    def receiver(self, method: Symbol) -> Values:
        """What a method's first parameter holds: its class (classmethod) or an instance of it."""
        if "staticmethod" in method.decorators or method.parent is None:
            return {}
        if "classmethod" in method.decorators or method.name in ("__new__", "__init_subclass__", "__class_getitem__"):
            return {f"C:{method.parent}": "class_object"}
        return {f"I:{method.parent}": "self"}

    def definition(self, qname: str, *, rebound: bool = True) -> Values:
        if rebound and qname in self._pending:
            return dict(self.read(f"<decorated>.{qname}"))
        return {f"{'F' if self.index.symbols[qname].kind == 'function' else 'C'}:{qname}": ""}

    def dotted(self, target: str) -> Values:
        """An absolute dotted name (an import's target): a definition, a module, or a module's variable."""
        index = self.index
        found = index.resolve_dotted(target)
        if found is not None:
            if found.kind in ("function", "class"):
                return self.definition(found.target)
            if found.kind == "module":
                return {f"M:{found.target}": ""}
            return {}
        module, _, name = target.rpartition(".")
        full = index.module_for(module) if module else None
        return dict(self.read(f"{full}.{name}")) if full else {}

    def attribute(self, objects: Values, name: str) -> Values:
        found: Values = {}
        symbols = self.index.symbols
        for value, kind in objects.items():
            tag, target = value[0], value[2:]
            if tag in "IC":
                if name == "__class__" and tag == "I":
                    found[f"C:{target}"] = weaker(kind, "class_object")
                    continue
                for member, member_kind in self.member(target, name, bound=tag == "I").items():
                    found[member] = weaker(kind, member_kind)
                if kind == "self":  # a subclass may define or override it (virtual dispatch)
                    for sub in self.subclasses(target):
                        own = f"{sub}.{name}"
                        if own in symbols or self.read(own):
                            for member in self.member(sub, name, bound=True, own_only=True):
                                found.setdefault(member, "override")
            elif tag == "M":
                qname = f"{target}.{name}"
                if qname in symbols and symbols[qname].parent is None:
                    found.update(self.definition(qname))
                elif held := self.read(qname):
                    found.update(held)
                elif self.index.module_for(qname):
                    found[f"M:{qname}"] = kind
        return found

    def member(self, class_q: str, name: str, *, bound: bool, own_only: bool = False) -> Values:
        """A class's attribute through its MRO: a method (bound through an instance), a nested class, or what
        the class and its instances were assigned."""
        order = [class_q] if own_only else self.index.mro(class_q)
        symbols = self.index.symbols
        for cls in order or []:
            if cls.startswith("?"):
                return {}
            qname = f"{cls}.{name}"
            symbol = symbols.get(qname)
            if symbol is not None:
                if symbol.kind == "class":
                    return {f"C:{qname}": ""}
                if qname in self._pending:
                    return dict(self.read(f"<decorated>.{qname}"))
                if "staticmethod" in symbol.decorators:
                    return {f"F:{qname}": ""}
                return {f"{'B' if bound or 'classmethod' in symbol.decorators else 'F'}:{qname}": ""}
            held = self.read(qname)
            if held:
                return dict(held)
        return {}

    def subclasses(self, class_q: str) -> list[str]:
        if self._subclasses is None:
            self._subclasses = {}
            for qname, symbol in self.index.symbols.items():
                if symbol.kind == "class" and symbol.bases:
                    for base in (self.index.mro(qname) or [])[1:]:
                        self._subclasses.setdefault(base, []).append(qname)
        return self._subclasses.get(class_q, [])

    # -- calls ----------------------------------------------------------------------------------------

    def call_values(
        self,
        facts: FileFacts,
        scope: Symbol | None,
        callees: Values,
        args: list[Values] | None = None,
        kwargs: dict[str, Values] | None = None,
        *,
        record: bool = False,
    ) -> Values:
        """What calling these values returns; their parameters receive the arguments. Recorded as calls of
        the scope (a function) in the last round."""
        returned: Values = {}
        for value, kind in callees.items():
            tag, target = value[0], value[2:]
            if tag in "FB":
                self.bind(target, tag == "B", args or [], kwargs or {})
                self.note(scope, target, kind, record)
                returned.update(self.returns(target, kind))
            elif tag == "C":
                init = self.member(target, "__init__", bound=True)
                for method in init:
                    if method[0] in "FB":
                        self.bind(method[2:], True, args or [], kwargs or {})
                        self.note(scope, method[2:], kind if kind not in ("", "self") else "constructor", record)
                returned[f"I:{target}"] = weaker(kind, "local_type")
            elif tag == "I":
                for method, method_kind in self.member(target, "__call__", bound=True).items():
                    if method[0] in "FB":
                        self.bind(method[2:], True, args or [], kwargs or {})
                        self.note(scope, method[2:], weaker(kind, method_kind), record)
                        returned.update(self.returns(method[2:], kind))
        return returned

    def note(self, scope: Symbol | None, callee: str, kind: str, record: bool) -> None:
        if record and scope is not None and scope.kind == "function":
            calls = self.recording.setdefault(scope.qualified_name, {})
            before = calls.get(callee)
            if before is None or KIND_CONFIDENCE[kind] > KIND_CONFIDENCE[before]:
                calls[callee] = kind

    def bind(self, function: str, bound: bool, args: list[Values], kwargs: dict[str, Values]) -> None:
        symbol = self.index.symbols.get(function)
        if symbol is None:
            return
        params = symbol.params[1:] if bound and symbol.params else symbol.params
        for param, values in zip(params, args, strict=False):
            if param.startswith("*"):
                break
            self.add(f"{function}.{param}", {v: weaker(k, "parameter") for v, k in values.items()})
        for name, values in kwargs.items():
            if name in params:
                self.add(f"{function}.{name}", {v: weaker(k, "parameter") for v, k in values.items()})

    def returns(self, function: str, kind: str) -> Values:
        held = self.read(f"{function}.{RETURN}")
        found = {v: weaker(weaker(kind, k), "return_type") for v, k in held.items()}
        symbol = self.index.symbols.get(function)
        if symbol is not None and symbol.returns:
            module = self.index.module_of(function)
            if module is not None:
                for value in self.annotation_in(module, symbol.returns):
                    found.setdefault(value, "return_type")
        return found

    # -- declared types -------------------------------------------------------------------------------

    def annotation(self, facts: FileFacts, text: str) -> Values:
        return {value: "annotation" for value in self.annotation_in(facts.module, text)}

    def annotation_in(self, module: str, text: str) -> list[str]:
        """Instances (or containers of them) a type annotation declares: `App`, `"App"`, `App | None`,
        `Optional[App]`, `list[App]`."""
        key = (module, text)
        found = self._annotations.get(key)
        if found is None:
            found = self._annotations[key] = self._annotation(module, text)
        return found

    def _annotation(self, module: str, text: str) -> list[str]:
        text = text.strip().strip("\"'")
        found: list[str] = []
        for part in _split_union(text):
            head, _, inner = part.partition("[")
            head = head.strip()
            short = head.rsplit(".", 1)[-1]
            if inner and short in _WRAPPERS:
                found.extend(self.annotation_in(module, inner.rstrip("]").rstrip()))
                continue
            if inner and short in _CONTAINER_TYPES:
                first = _split_args(inner[:-1] if inner.endswith("]") else inner)[0]
                found.extend(f"E:{v[2:]}" for v in self.annotation_in(module, first) if v.startswith("I:"))
                continue
            if not _TYPE_NAME.fullmatch(head) or head == "None":
                continue
            resolved = self.index.resolve_in_module(module, head.split("."))
            if resolved is not None and resolved[0].kind == "class":
                found.append(f"I:{resolved[0].target}")
        return found

    def calls_of(self, caller: str) -> dict[str, str]:
        return self.recording.get(caller, {})


def _split_top_level(text: str, separator: str) -> list[str]:
    """The parts of `text` between `separator`s outside brackets, stripped."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated parts of a type's arguments."""
    return _split_top_level(text, ",")


def _split_union(text: str) -> list[str]:
    return [p for p in _split_top_level(text, "|") if p]
