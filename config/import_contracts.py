"""import-linter contract for the layers *with* their edges (`make lint`, CI).

The built-in layers contract sees an app as one package, so each app's edge (its
`api/`, admin modules, management commands), which by design sits above every core,
had to be exempted with blanket ignores, and no edge import was checked. This
contract tells them apart by name and checks every direct import:

- a core module imports its own app's core and the cores of lower layers only, and no
  edge at all;
- an edge imports any core, its own app's edge and the shared edge kit
  (`shared_edges`: the base view, schema, admin base...), never another app's edge;
- the edges of `bounded_edges` apps (evidence: `audit`) import nothing above their
  own layer;
- no layer imports the composition root (`composition`: settings, URLs, Celery app).

Direct imports suffice: any path from a core to a higher layer has a first step that is
either upward or into an edge, and both are refused. Written in terms of packages and
name patterns, so it holds as modules move between apps. Only used by lint-imports
(a dev dependency); nothing imports this module at run time."""

from __future__ import annotations

from fnmatch import fnmatch

from importlinter import Contract, ContractCheck, fields, output


class EdgeLayersContract(Contract):
    type_name = "edge_layers"

    layers = fields.ListField(subfield=fields.StringField())  # top first
    edges = fields.ListField(subfield=fields.StringField())  # module name patterns
    shared_edges = fields.ListField(subfield=fields.StringField(), required=False)
    bounded_edges = fields.ListField(subfield=fields.StringField(), required=False)
    exceptions = fields.ListField(subfield=fields.StringField(), required=False)
    composition = fields.ListField(subfield=fields.StringField(), required=False)

    def _app(self, module: str) -> str | None:
        top = module.split(".", 1)[0]
        return top if top in self.layers else None

    def _is_edge(self, module: str) -> bool:
        tail = module.split(".")[1:]
        return any(
            fnmatch(".".join(tail[: index + 1]), pattern)
            for pattern in self.edges
            for index in range(len(tail))
        )

    def _rank(self, app: str) -> int:
        return len(self.layers) - self.layers.index(app)  # higher = above

    def _excepted(self, importer: str, imported: str) -> bool:
        return any(
            fnmatch(importer, rule.split(" -> ")[0]) and fnmatch(imported, rule.split(" -> ")[1])
            for rule in self.exceptions or ()
        )

    def _shared(self, module: str) -> bool:
        return any(
            module == shared or module.startswith(shared + ".")
            for shared in self.shared_edges or ()
        )

    def _refusal(self, importer: str, imported: str) -> str | None:
        source, target = self._app(importer), self._app(imported)
        if source is not None and imported.split(".", 1)[0] in (self.composition or ()):
            return "a layer imports the composition root"
        if source is None or target is None:
            return None
        source_edge, target_edge = self._is_edge(importer), self._is_edge(imported)
        if not source_edge:
            if target_edge:
                return "a core module imports an edge"
            if self._rank(target) > self._rank(source):
                return f"{source}'s core imports {target}, a higher layer"
            return None
        if source in (self.bounded_edges or ()) and self._rank(target) > self._rank(source):
            return f"{source}'s edge imports {target}, above {source}"
        if target_edge and target != source and not self._shared(imported):
            return f"{source}'s edge imports {target}'s edge"
        return None

    def check(self, graph, verbose: bool) -> ContractCheck:
        broken, used_exceptions = [], set()
        for importer in sorted(graph.modules):
            if self._is_edge(importer) and importer.split(".")[1:2] == ["migrations"]:
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                reason = self._refusal(importer, imported)
                if reason is None:
                    continue
                if self._excepted(importer, imported):
                    used_exceptions.add(f"{importer} -> {imported}")
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = ", ".join(f"l.{d['line_number']}" for d in details)
                broken.append(f"{importer} -> {imported} ({lines}): {reason}")
        return ContractCheck(
            kept=not broken,
            metadata={"broken": broken},
            ignored_import_count=len(used_exceptions),
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["broken"]:
            output.print_error(f"- {line}", bold=False)
        output.new_line()
