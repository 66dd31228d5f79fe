"""No import circle among the modules of actors/ and pipelines/ (docs/architecture.md, Floors).

A circle is module A importing module B, anywhere in A (inside a function or under TYPE_CHECKING
too), and B importing A back, directly or through others; a package's ``__init__`` counts as a
module of its own (one that imports its members while they import it back is a circle). grimp
(import-linter's graph) reads the imports from the source without running it. import-linter's
own ``acyclic_siblings`` contract (pyproject.toml, for actors.verify's parts) squashes each
package into one node, so it cannot see a circle between a package and its members: this is the
rule for every module.
"""

import grimp


def circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    imports = {module: sorted(graph.find_modules_directly_imported_by(module)) for module in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            module, position = work.pop()
            if position == 0:
                index[module] = low[module] = len(index)
                stack.append(module)
                on_stack.add(module)
            for offset, imported in enumerate(imports[module][position:], start=position):
                if imported not in index:
                    work += [(module, offset + 1), (imported, 0)]
                    break
                if imported in on_stack:
                    low[module] = min(low[module], index[imported])
            else:
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
    return found


def test_circles_are_found():
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="a.b")  # a package importing its member ...
    graph.add_import(importer="a.b", imported="a")  # ... which imports it back
    graph.add_import(importer="a.c", imported="a.d")
    assert circles(graph) == [["a", "a.b"]]
    graph.add_import(importer="a.d", imported="a.b")
    graph.add_import(importer="a.b", imported="a.c")
    assert circles(graph) == [["a", "a.b", "a.c", "a.d"]]


def test_no_import_circle_in_actors_and_pipelines():
    found = circles(grimp.build_graph("actors", "pipelines", cache_dir=None))
    assert not found, "import circles (break each one; see docs/architecture.md, Floors):\n" + "\n".join(
        " <-> ".join(component) for component in found)
