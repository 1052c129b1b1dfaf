"""Parse ``*Config`` dataclasses from CLI flags and a YAML file (``--config``), TRL style.

:func:`parse_configs` is the one entry point every ``genrm`` command uses. On top of
:class:`trl.TrlParser` it

* fills each flag's ``--help`` text from the owning dataclass's docstring ``Fields:`` section
  (the project's one place for field docs; :func:`field_docs` parses it), with the default and,
  where a field declares them (``Literal`` types or ``metadata={"choices": ...}``), the choices;
* turns every mistake -- an unknown or misspelt flag, a bad value, an unknown YAML key, a missing
  config file, a ``__post_init__`` validation error -- into a :class:`ConfigError` whose one-line
  message names the flag / key / field and what to do (``genrm_plugin.cli`` prints it);
* lets one YAML file serve several recipes: a dataclass may declare, through a classmethod
  ``inapplicable_fields(values) -> {field: reason}``, fields that have no effect for the given
  values (e.g. ``iterations`` for a non-STaR recipe). Such a field set explicitly on the command
  line is an error; a value that comes from the YAML file is set back to the field's default.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import os
import re
from pathlib import Path
from typing import Any, Sequence

CONFIG_FLAG = "--config"
SET_FIELDS_ATTR = "_genrm_set_fields"  # which fields the user set, kept on each parsed config
_ENTRY = re.compile(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*:(?:\s+(.*))?$")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data):`(~?)([^`]+)`")


class ConfigError(ValueError):
    """A flag, YAML key or config value that cannot be used; ``prog`` names the command."""

    def __init__(self, message: str, prog: str | None = None) -> None:
        super().__init__(message)
        self.prog = prog


# -- field docs ------------------------------------------------------------------------------------
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its doc from the ``Fields:`` section of ``cls``'s docstring (and its bases').

    An entry is ``name: text`` (or ``name_a, name_b: text`` for fields sharing one doc) at the
    section's indentation; deeper-indented lines continue it. Sphinx roles and double backticks
    are reduced to plain text; whitespace is collapsed to single spaces.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_section_docs(inspect.cleandoc(klass.__dict__.get("__doc__") or "")))
    return docs


def missing_field_docs(cls: type) -> list[str]:
    """The init fields of dataclass ``cls`` with no doc: neither in its ``Fields:`` docs nor, for
    fields copied from another library's config (TRL's trainer arguments), a ``help`` metadata."""
    docs = field_docs(cls)
    return [f.name for f in dataclasses.fields(cls) if f.init and not (docs.get(f.name) or f.metadata.get("help"))]


def _section_docs(doc: str) -> dict[str, str]:
    lines = doc.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Fields:"]
    if not starts:
        return {}
    header_indent = _indent(lines[starts[0]])
    entries: list[tuple[list[str], list[str]]] = []
    base: int | None = None
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            continue
        indent = _indent(line)
        if indent <= header_indent:
            break
        base = indent if base is None else base
        match = _ENTRY.match(line.strip()) if indent == base else None
        if match:
            entries.append(([n.strip() for n in match.group(1).split(",")], [match.group(2) or ""]))
        elif entries:
            entries[-1][1].append(line.strip())
    return {name: _plain(" ".join(text)) for names, text in entries for name in names}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _plain(text: str) -> str:
    text = _ROLE.sub(lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    return " ".join(text.replace("``", "`").split())


# -- the parser ------------------------------------------------------------------------------------
def build_parser(dataclass_types: Sequence[type], prog: str):
    """A :class:`trl.TrlParser` over ``dataclass_types`` whose flags carry their field docs."""
    from trl import TrlParser

    class _Parser(TrlParser):
        def error(self, message: str):  # argparse would print usage and exit; the CLI prints one line
            raise ConfigError(f"{message}; `{self.prog} --help` lists the flags", self.prog)

    parser = _Parser(dataclass_types=list(dataclass_types), prog=prog, formatter_class=argparse.HelpFormatter)
    owners = {f.name: (cls, f) for cls in reversed(list(dataclass_types)) for f in dataclasses.fields(cls)}
    docs = {cls: field_docs(cls) for cls in dataclass_types}
    for action in parser._actions:
        if action.dest in owners and action.option_strings:
            cls, field = owners[action.dest]
            doc = docs[cls].get(field.name)
            action.help = _help_text(action, cls, field, doc.replace("%", "%%") if doc else field.metadata.get("help"))
    parser.add_argument(CONFIG_FLAG, metavar="FILE.yaml", help="YAML mapping of field: value (flags win over it)")
    if "--debug" not in parser._option_string_actions:  # (TrainingArguments.debug is a field: YAML only)
        parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (or GENRM_DEBUG=1)")
    return parser


def _help_text(action: argparse.Action, cls: type, field: dataclasses.Field, doc: str | None) -> str:
    """``doc`` (argparse-escaped) with the default and choices; a marked gap when there is no doc."""
    if isinstance(action, argparse._StoreFalseAction):  # the --no_<field> complement of a bool field
        return f"set {field.name} to false"
    text = doc or f"UNDOCUMENTED: add '{field.name}: ...' to the Fields: section of {cls.__name__}'s docstring"
    notes = ["default: %(default)s"]
    if action.choices:
        notes.append("choices: " + ", ".join(str(c) for c in action.choices))
    elif action.const is True:
        notes.append("true/false; the bare flag means true")
    return text + " (" + "; ".join(notes) + ")"


def parse_configs(dataclass_types: Sequence[type], argv: Sequence[str], prog: str) -> tuple[Any, ...]:
    """Fill ``dataclass_types`` from ``argv``; ``--config FILE.yaml`` sets defaults, flags win.

    Raises:
        ConfigError: any unusable flag, value, YAML file or key, or a config's own validation
            error (the message names the flag or field; see the module docstring).
    """
    parser = build_parser(dataclass_types, prog)
    argv, yaml_path = _pop_config_flag(list(argv), prog)
    yaml_keys = _apply_yaml(parser, yaml_path, prog) if yaml_path else set()
    namespace, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError(_unknown_flags_message(parser, unknown, prog), prog)
    explicit = _explicit_dests(parser, argv)
    values = vars(namespace)
    return tuple(_build(cls, values, explicit, yaml_keys, yaml_path, prog) for cls in dataclass_types)


def _pop_config_flag(argv: list[str], prog: str) -> tuple[list[str], str | None]:
    path = None
    for i, arg in enumerate(argv):
        if arg == CONFIG_FLAG:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ConfigError(f"{CONFIG_FLAG} needs a YAML file path", prog)
            path, argv = argv[i + 1], argv[:i] + argv[i + 2 :]
            break
        if arg.startswith(CONFIG_FLAG + "="):
            path, argv = arg.split("=", 1)[1], argv[:i] + argv[i + 1 :]
            break
    return argv, path


def _apply_yaml(parser, path: str, prog: str) -> set[str]:
    """Set the parser's defaults from the YAML mapping at ``path``; returns the keys it set."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{CONFIG_FLAG} {path}: file not found", prog) from None
    except OSError as e:
        raise ConfigError(f"{CONFIG_FLAG} {path}: cannot read it ({e.strerror})", prog) from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{CONFIG_FLAG} {path}: not valid YAML{line} ({getattr(e, 'problem', e)})", prog) from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FLAG} {path}: must hold a mapping of field: value, got {type(data).__name__}", prog)
    env = data.pop("env", {})
    if not isinstance(env, dict):
        raise ConfigError(f"{CONFIG_FLAG} {path}: 'env' must be a mapping of variable: value", prog)
    os.environ.update({str(k): str(v) for k, v in env.items()})
    known = {a.dest for a in parser._actions} - {"help", "config", "debug"}
    unknown = [str(key) for key in data if key not in known]
    if unknown:
        hints = [_did_you_mean(key, known) for key in unknown]
        listed = ", ".join(f"{key!r}{hint}" for key, hint in zip(unknown, hints))
        raise ConfigError(f"{CONFIG_FLAG} {path}: unknown key(s) {listed}; `{prog} --help` lists the fields", prog)
    parser.set_defaults_with_config(**data)
    return set(data)


def _unknown_flags_message(parser, unknown: list[str], prog: str) -> str:
    flags = [a for a in unknown if a.startswith("-")]
    if not flags:
        return f"unexpected argument {unknown[0]!r} (every setting is a --flag); `{prog} --help` lists them"
    known = [s for a in parser._actions for s in a.option_strings]
    name = flags[0].split("=", 1)[0]
    return f"unknown flag {name}{_did_you_mean(name, known)}; `{prog} --help` lists the flags"


def _did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, sorted(set(known)), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def _explicit_dests(parser, argv: list[str]) -> set[str]:
    """The destinations set by ``argv`` itself (not by defaults or the YAML file)."""
    saved = [(action, action.default) for action in parser._actions]
    try:
        for action, _ in saved:
            action.default = argparse.SUPPRESS
        namespace, _ = parser.parse_known_args(argv)
    finally:
        for action, default in saved:
            action.default = default
    return set(vars(namespace))


def _build(cls: type, values: dict, explicit: set[str], yaml_keys: set[str], yaml_path: str | None, prog: str):
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    inputs = {name: values[name] for name in fields if name in values}
    inapplicable = getattr(cls, "inapplicable_fields", None)
    for name, reason in (inapplicable(inputs) if inapplicable else {}).items():
        default = field_default(fields[name])
        if name in explicit and inputs.get(name) != default:
            raise ConfigError(f"--{name} has no effect here: {reason}; drop the flag", prog)
        inputs[name] = default  # a value from a YAML file shared with other recipes
    try:
        config = cls(**inputs)
    except ValueError as e:
        named = [name for name in fields if re.search(rf"\b{cls.__name__}\.{name}\b", str(e))]
        sources = [s for s in (_source(name, explicit, yaml_keys, yaml_path) for name in named) if s]
        hint = f" (set by {', '.join(sources)})" if sources else ""
        raise ConfigError(f"{e}{hint}", prog) from e
    object.__setattr__(config, SET_FIELDS_ATTR, frozenset(n for n in fields if n in explicit or n in yaml_keys))
    return config


def set_fields(config: Any) -> frozenset[str] | None:
    """The fields of a config that :func:`parse_configs` filled from a flag or the YAML file (not
    defaults); ``None`` for a config built in Python."""
    return getattr(config, SET_FIELDS_ATTR, None)


def field_default(field: dataclasses.Field) -> Any:
    """The default value of a dataclass field (``None`` when it has none)."""
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else None


def _source(name: str, explicit: set[str], yaml_keys: set[str], yaml_path: str | None) -> str:
    if name in explicit:
        return f"--{name}"
    return f"{name!r} in {yaml_path}" if name in yaml_keys else ""
