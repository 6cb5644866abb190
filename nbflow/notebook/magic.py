"""The ``%%parallel_map`` cell magic and the ``%sweep_notebook`` line magic: thin fronts over `Sweep`.

::

    %%parallel_map [--zip] [--executor NAME] [--n-jobs N] [--out VAR] [--collect NAMES]
                   [--on-error record|raise] [--retries N] [--timeout SECONDS] [--cache [DIR]]
                   [--no-progress] [--name NAME] [--no-record] [--store DIR] AXIS=EXPR ...
    <cell body>

Each ``AXIS=EXPR`` is evaluated in the notebook's namespace and is one axis
(their product, or with ``--zip`` paired up). The body runs once per point with
the axis names bound and the notebook's globals readable; names it assigns stay
local to that point. A row holds the axis values plus the ``--collect`` names,
or else the value of the body's last expression. The DataFrame goes into
``VAR`` (default ``results``) and is displayed. Stop (Ctrl-C) puts the partial
frame into ``VAR`` and ends the cell in a ``KeyboardInterrupt``, so Run All stops.
The run is recorded in the run store under ``NAME`` (see `nbflow.runs`) unless
``--no-record`` (or ``nbflow.config(record=False)``); ``--store`` picks the store.

::

    %sweep_notebook PATH [--zip] [--executor NAME] [--n-jobs N] [--out VAR] [--output-dir DIR]
                    [--kernel NAME] [--on-error record|raise] [--retries N] [--timeout SECONDS]
                    [--cache [DIR]] [--no-progress] [--name NAME] [--no-record] [--store DIR]
                    AXIS=EXPR ...

runs the notebook at ``PATH`` once per point, as `nbflow.sweep_notebook` does (on processes
unless ``--executor`` says otherwise), into ``VAR`` the same way.
"""

from __future__ import annotations

import argparse
import ast
import functools
import io
import re
import tokenize
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from nbflow.errors import Interrupted
from nbflow.parallel.registry import resolve_executor
from nbflow.sweeps.grids import grid, zipped
from nbflow.sweeps.notebooks import sweep_notebook
from nbflow.sweeps.runner import Sweep

__all__ = ["ParallelMapMagics", "CellBody", "parse_line", "parse_notebook_line"]

USAGE = (
    "%%parallel_map [--zip] [--executor NAME] [--n-jobs N] [--out VAR] [--collect NAMES] "
    "[--on-error record|raise] [--retries N] [--timeout SECONDS] [--cache [DIR]] [--no-progress] [--name NAME] [--no-record] [--store DIR] AXIS=EXPR ..."
)
NOTEBOOK_USAGE = (
    "%sweep_notebook PATH [--zip] [--executor NAME] [--n-jobs N] [--out VAR] [--output-dir DIR] "
    "[--kernel NAME] [--on-error record|raise] [--retries N] [--timeout SECONDS] [--cache [DIR]] "
    "[--no-progress] [--name NAME] [--no-record] [--store DIR] AXIS=EXPR ..."
)
_AXIS_START = re.compile(r"(?<!\S)[A-Za-z_]\w*=(?!=)")
_FIRST = re.compile(r"""\s*("[^"]+"|'[^']+'|\S+)\s*(.*)""", re.S)


class _Parser(argparse.ArgumentParser):
    def __init__(self, prog: str, usage: str) -> None:
        super().__init__(prog=prog, add_help=False)
        self.usage_line = usage

    def error(self, message: str) -> None:  # argparse would print and exit the kernel's process
        msg = f"{self.prog}: {message}.\nUsage: {self.usage_line}"
        raise UsageError(msg)


def _parser(prog: str) -> _Parser:
    """The options of ``%%parallel_map`` or ``%sweep_notebook``: a sweep's, and each one's own."""
    notebook = prog == "%sweep_notebook"
    parser = _Parser(prog, NOTEBOOK_USAGE if notebook else USAGE)
    parser.add_argument("--zip", action="store_true")
    parser.add_argument("--executor", default="processes" if notebook else "threads")
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--out", default="results")
    if notebook:
        parser.add_argument("--output-dir", default=None)
        parser.add_argument("--kernel", default=None)
    else:
        parser.add_argument("--collect", default=None)
    parser.add_argument("--on-error", choices=["record", "raise"], default="record")
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--cache", nargs="?", const=True, default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--name", default=None)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--store", default=None)
    return parser


def parse_line(line: str, prog: str = "%%parallel_map") -> tuple[argparse.Namespace, list[tuple[str, str]]]:
    """The options and the ``(axis, expression source)`` pairs of a magic's first line."""
    match = _AXIS_START.search(line)
    options_text, axes_text = (line[: match.start()], line[match.start() :]) if match else (line, "")
    parser = _parser(prog)
    options, unknown = parser.parse_known_args(options_text.split())
    if unknown:
        msg = f"{prog}: unknown option(s) {unknown}.\nUsage: {parser.usage_line}"
        raise UsageError(msg)
    if not options.out.isidentifier():
        msg = f"{prog}: --out {options.out!r} is not a valid variable name."
        raise UsageError(msg)
    return options, _split_axes(axes_text, prog)


def parse_notebook_line(line: str) -> tuple[str, argparse.Namespace, list[tuple[str, str]]]:
    """``%sweep_notebook``'s line: the notebook's path (first, quoted if it has spaces), options and axes."""
    match = _FIRST.fullmatch(line)
    if match is None or match.group(1).startswith("-") or _AXIS_START.match(match.group(1)):
        msg = f"%sweep_notebook needs the notebook's path first.\nUsage: {NOTEBOOK_USAGE}"
        raise UsageError(msg)
    path = match.group(1).strip("'\"")
    options, axes = parse_line(match.group(2), "%sweep_notebook")
    return path, options, axes


def _split_axes(text: str, prog: str = "%%parallel_map") -> list[tuple[str, str]]:
    """Split ``a=[1, 2] b=range(3)`` (spaces or commas between) into the source of each axis."""
    offsets = [0]
    for part in text.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(part))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError) as exc:
        msg = f"{prog}: cannot read the axes {text.strip()!r}: {exc}."
        raise UsageError(msg) from None
    depth, starts = 0, []  # (axis name, where its name starts, where its expression starts)
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif depth == 0 and tok.type == tokenize.NAME and i + 1 < len(tokens) and tokens[i + 1].string == "=":
            name_at = offsets[tok.start[0] - 1] + tok.start[1]
            value_at = offsets[tokens[i + 1].end[0] - 1] + tokens[i + 1].end[1]
            starts.append((tok.string, name_at, value_at))
    axes = []
    for k, (name, _, value_at) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else len(text)
        source = text[value_at:end].strip().rstrip(",").strip()
        if not source:
            msg = f"{prog}: axis {name!r} has no expression; write {name}=[...]."
            raise UsageError(msg)
        axes.append((name, source))
    return axes


class CellBody:
    """A cell body as a function of the axis values, picklable so processes and clusters can run it.

    Args:
        source: the cell body.
        namespace: the notebook globals the body reads (captured when the magic runs).
        collect: names to return as a dict; without them the last expression's value is returned.
    """

    def __init__(self, source: str, namespace: dict[str, Any], collect: list[str] | None) -> None:
        self.source = source
        self.namespace = namespace
        self.collect = collect
        self._compiled: tuple[Any, Any] | None = None
        self.__name__ = "cell"

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_compiled"}

    def __setstate__(self, values: dict) -> None:
        self.__dict__.update(values)
        self._compiled = None

    def _code(self) -> tuple[Any, Any]:
        if self._compiled is None:
            tree = ast.parse(self.source)
            last = None
            if self.collect is None and tree.body and isinstance(tree.body[-1], ast.Expr):
                last = compile(ast.Expression(tree.body.pop().value), "<%%parallel_map cell>", "eval")
            self._compiled = (compile(tree, "<%%parallel_map cell>", "exec"), last)
        return self._compiled

    def __nbflow_fingerprint__(self) -> dict:
        # The cell is keyed like a function: its compiled code, the globals it reads, what it collects.
        return {"code": self._code(), "globals": self.namespace, "data": self.collect}

    def __call__(self, **params: Any) -> Any:
        body, last = self._code()
        scope = {**self.namespace, **params}
        exec(body, scope)
        if self.collect is not None:
            missing = [n for n in self.collect if n not in scope]
            if missing:
                point = ", ".join(f"{k}={v!r}" for k, v in params.items())
                msg = f"--collect name {missing[0]!r} is not defined after the cell ran at {point}; assign it in every branch of the cell."
                raise NameError(msg)
            return {n: scope[n] for n in self.collect}
        return eval(last, scope) if last is not None else None


def _names_read(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


@magics_class
class ParallelMapMagics(Magics):
    """``%%parallel_map`` runs a cell, ``%sweep_notebook`` a notebook, over a grid of parameters into a DataFrame."""

    @cell_magic
    def parallel_map(self, line: str, cell: str) -> Any:
        """Run the cell once per point of the axes given on the first line; see the module docstring."""
        options, axis_sources = parse_line(line)
        user_ns = self.shell.user_ns
        axes = _evaluated(axis_sources, user_ns, "%%parallel_map", "lr=[0.01, 0.1]", USAGE)
        try:
            body_names = _names_read(cell)
        except SyntaxError as exc:
            msg = f"%%parallel_map: the cell body does not parse: {exc.msg} (line {exc.lineno})."
            raise UsageError(msg) from None
        namespace = {n: user_ns[n] for n in body_names if n in user_ns and n not in axes}
        collect = [n.strip() for n in options.collect.split(",") if n.strip()] if options.collect else None
        executor = _executor(options, "%%parallel_map")
        points = (zipped if options.zip else grid)(**axes)
        try:
            sweep = Sweep(
                CellBody(cell, namespace, collect),
                points,
                executor=executor,
                on_error=options.on_error,
                retries=options.retries,
                timeout=options.timeout,
                cache=options.cache,
                progress=not options.no_progress,
                name=options.name or "parallel_map",
                **_recording(options),
            )
        except ValueError as exc:
            raise UsageError(f"%%parallel_map: {exc}") from None
        return _into(user_ns, options.out, sweep.run)

    @line_magic
    def sweep_notebook(self, line: str) -> Any:
        """Run the notebook at PATH once per point of the axes given; see the module docstring."""
        path, options, axis_sources = parse_notebook_line(line)
        user_ns = self.shell.user_ns
        axes = _evaluated(axis_sources, user_ns, "%sweep_notebook", "PATH lr=[0.01, 0.1]", NOTEBOOK_USAGE)
        points = (zipped if options.zip else grid)(**axes)
        run = functools.partial(
            sweep_notebook,
            path,
            points,
            executor=_executor(options, "%sweep_notebook"),
            output_dir=options.output_dir,
            cache=options.cache,
            progress=not options.no_progress,
            timeout=options.timeout,
            kernel_name=options.kernel,
            on_error=options.on_error,
            retries=options.retries,
            **({"name": options.name} if options.name else {}),
            **_recording(options),
        )
        return _into(user_ns, options.out, run)


def _recording(options: argparse.Namespace) -> dict[str, Any]:
    """``--no-record`` and ``--store`` as a sweep's keywords; unset, a sweep follows nbflow.config."""
    return {"record": False if options.no_record else None, "store": options.store}


def _evaluated(
    sources: list[tuple[str, str]], user_ns: dict, prog: str, example: str, usage: str
) -> dict[str, Any]:
    """Each axis's expression, evaluated in the notebook's namespace."""
    if not sources:
        msg = f"{prog} needs at least one axis, e.g. `{prog} {example}`.\nUsage: {usage}"
        raise UsageError(msg)
    axes: dict[str, Any] = {}
    for name, source in sources:
        if name in axes:
            msg = f"{prog}: axis {name!r} is given twice; give each axis once."
            raise UsageError(msg)
        try:
            axes[name] = eval(source, user_ns)
        except Exception as exc:
            msg = f"{prog}: axis {name!r} = {source} failed: {type(exc).__name__}: {exc}"
            raise UsageError(msg) from None
    return axes


def _executor(options: argparse.Namespace, prog: str) -> Any:
    try:
        # Through the executor's own constructor, so that --n-jobs 0 is refused, not ignored.
        extra = {"max_concurrency": options.n_jobs} if options.n_jobs is not None else {}
        return resolve_executor(options.executor, **extra)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{prog}: --executor {options.executor} --n-jobs {options.n_jobs}: {exc}") from None


def _into(user_ns: dict, out: str, run: Any) -> Any:
    """``run()``'s frame, put in the notebook as ``out``; after a Stop, the partial frame, and re-raise."""
    try:
        results = run()
    except Interrupted as exc:
        # Stop keeps what finished where the user looks for it, and still ends the cell in an
        # error, so that Run All stops here.
        user_ns[out] = exc.results
        exc.args = (f"{exc} The partial frame is in {out!r}.",)
        raise
    user_ns[out] = results
    return results
