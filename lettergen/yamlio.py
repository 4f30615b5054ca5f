"""Reading YAML and JSON files into plain mappings, with one clear error per problem."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

try:  # the C parser where PyYAML was built with libyaml; the pure-Python one otherwise
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Base = yaml.SafeLoader


_Scalar, _Mapping = yaml.nodes.ScalarNode, yaml.nodes.MappingNode


class _StrictLoader(_Base):  # type: ignore[misc]
    """Safe loader that rejects duplicate keys (a silent overwrite hides a typo), keeps an impossible date a
    string (so that validation names its field), and refuses a value its explicit tag does not fit or a
    number longer than :data:`MAX_NUMBER_CHARS`."""


def _key(key: Any, seen: Any, node: Any) -> Any:
    try:
        duplicate = key in seen
    except TypeError:  # a list or mapping used as a key
        raise yaml.constructor.ConstructorError(
            None, None, "a mapping key must be a plain value", node.start_mark
        ) from None
    if duplicate:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", node.start_mark)
    return key


def _mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
    if not isinstance(node, _Mapping):  # `!!map [1]`: PyYAML's own check, with its message
        raise yaml.constructor.ConstructorError(
            None, None, f"expected a mapping node, but found {node.id}", node.start_mark
        )
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:  # as SafeConstructor.construct_pairs, checking each key
        key = _key(loader.construct_object(key_node, deep=deep), out, key_node)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


def _timestamp(loader: Any, node: Any) -> Any:
    # An impossible date (2026-13-45) stays a string so that validation names its field. A value that is not
    # shaped like a timestamp at all can only carry an explicit tag (`!!timestamp nope`): PyYAML fails on it
    # with an AttributeError; here it does not fit its tag, as `!!int seven` does not.
    value = loader.construct_scalar(node)
    if not _TIMESTAMP.match(value):
        raise ValueError("not a timestamp")
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return value


# The longest number a case or data file may write, in characters. Longer ones are refused before they are
# converted: a sexagesimal integer (YAML 1.1's `1:0:0:...`) costs quadratic time (a 1 MB one took 30 s),
# a decimal one of more than 4300 digits is refused by Python itself, and no field takes such a number.
MAX_NUMBER_CHARS = 100


class _NumberTooLong(yaml.constructor.ConstructorError):
    """A number literal longer than :data:`MAX_NUMBER_CHARS` (valid YAML, but no case holds one)."""


def _scalar(construct: Any, longest: int | None = None) -> Any:
    """A scalar constructor that refuses a value its tag does not fit with ValueError (PyYAML's own raise
    IndexError for `!!int ""` and KeyError for `!!bool maybe`), and a number longer than ``longest``."""

    def make(loader: Any, node: Any) -> Any:
        if longest is not None and isinstance(node, _Scalar) and len(node.value) > longest:
            raise _NumberTooLong(None, None, "", node.start_mark)
        try:
            return construct(loader, node)
        except (IndexError, KeyError):
            raise ValueError("the value does not fit its tag") from None

    return make


def _too_long(line: int) -> str:
    return f"holds a number longer than {MAX_NUMBER_CHARS} characters (line {line})"


_MAP = "tag:yaml.org,2002:map"
_StrictLoader.add_constructor(_MAP, _mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
_TIMESTAMP = yaml.constructor.SafeConstructor.timestamp_regexp  # what PyYAML's constructor matches
for _tag, _longest in (("int", MAX_NUMBER_CHARS), ("float", MAX_NUMBER_CHARS), ("bool", None)):
    _StrictLoader.add_constructor(
        f"tag:yaml.org,2002:{_tag}", _scalar(_StrictLoader.yaml_constructors[f"tag:yaml.org,2002:{_tag}"], _longest)
    )

MAX_BYTES = 5 * 1024 * 1024


def read_text(path: Path, error: Any) -> str:
    """Read a UTF-8 text file or raise ``error(file, field, problem)``."""
    return decode_text(read_bytes(path, error), str(path), error)


def read_bytes(path: Path, error: Any) -> bytes:
    """A regular file's bytes, or ``error(file, field, problem)`` when it cannot be read.

    Only a regular file is read (a symbolic link is followed to one): a FIFO would block until someone writes
    to it, and a device such as ``/dev/zero`` never ends. The size cap is enforced while reading, so a file that
    grows (or lies about its size, as those in /proc do) is read no further than one byte past it.
    """
    file = str(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise error(file, "", _not_regular(path))
        # O_NONBLOCK: a FIFO put in place since the stat opens at once (and is refused below) instead of hanging.
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
        )
    except FileNotFoundError:
        raise error(file, "", "file not found") from None
    except IsADirectoryError:
        raise error(file, "", "is a directory, not a file") from None
    except OSError as exc:
        raise error(file, "", f"cannot be read ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(file, "", _not_regular(path))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            raise error(file, "", _too_large())
        return b"".join(chunks)
    except OSError as exc:
        raise error(file, "", f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _not_regular(path: Path) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"is {kind}, not a regular file"


def _too_large() -> str:
    return f"is larger than {MAX_BYTES // (1024 * 1024)} MB"


def decode_text(raw: bytes, file: str, error: Any) -> str:
    """The UTF-8 text of a file's bytes (a BOM allowed), or ``error(file, field, problem)``."""
    if len(raw) > MAX_BYTES:
        raise error(file, "", _too_large())
    if b"\x00" in raw:
        raise error(file, "", "is a binary file, not YAML or JSON")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(file, "", f"is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise error(file, "", "is empty")
    return text


def parse_mapping(text: str, file: str, error: Any, json_only: bool = False) -> dict[str, Any]:
    """Parse YAML (a superset of JSON) or JSON text whose top level must be a mapping."""
    data = parse_document(text, file, error, json_only)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else type(data).__name__
        raise error(file, "", f"must hold a mapping at the top level, not {kind}")
    return data


def parse_document(text: str, file: str, error: Any, json_only: bool = False) -> Any:
    """Parse YAML or JSON text, whatever its top level holds, with :func:`parse_mapping`'s checks."""
    try:
        data = _json_load(text) if json_only else yaml.load(text, Loader=_StrictLoader)
    except json.JSONDecodeError as exc:
        raise error(file, "", f"is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except _NotJson as exc:
        raise error(file, "", str(exc)) from None
    except _NumberTooLong as exc:
        raise error(file, "", _too_long(exc.problem_mark.line + 1 if exc.problem_mark else 0)) from None
    except yaml.YAMLError as exc:
        if not isinstance(exc, yaml.constructor.ConstructorError) and _only_libyaml_refuses(text):
            raise error(file, "", "is nested too deeply") from None
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or "syntax error"
        raise error(file, "", f"is not valid YAML ({where}: {problem})") from None
    except RecursionError:
        raise error(file, "", "is nested too deeply") from None
    except (ValueError, OverflowError):  # an explicit tag its value does not fit, as `!!int seven`
        raise error(file, "", "is not valid YAML (a value does not fit its !! tag)") from None
    return data


class _NotJson(ValueError):
    """A number the JSON parser accepts but a case may not hold: NaN, Infinity, or one of absurd length."""


def _json_load(text: str) -> Any:
    def number(kind: Any) -> Any:
        def parse(literal: str) -> Any:
            if len(literal) > MAX_NUMBER_CHARS:
                raise _NotJson(_too_long(text.count("\n", 0, max(text.find(literal), 0)) + 1))
            return kind(literal)

        return parse

    def constant(name: str) -> Any:
        raise _NotJson(f"is not valid JSON ({name} is not a JSON number)")

    return json.loads(text, parse_int=number(int), parse_float=number(float), parse_constant=constant)


def _only_libyaml_refuses(text: str) -> bool:
    """Whether the C parser refused a document that is nested past its own depth limit (libyaml as PyYAML 6.0.4
    bundles it raises a parse error there, where the pure-Python parser runs out of stack): asked only once the
    C parser has failed to parse, so that a deep document gets the same message with every PyYAML release.
    Composing is enough: the question is the document's structure, not its values."""
    if _Base is yaml.SafeLoader:  # no C parser: its error is the document's own
        return False
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        return True
    except Exception:  # invalid for the pure-Python parser too: the C parser's message stands
        return False
    return True


def load_yaml_mapping(path: Path, error: Any) -> dict[str, Any]:
    return parse_bytes(read_bytes(path, error), path, error)


def parse_bytes(raw: bytes, path: Path, error: Any) -> dict[str, Any]:
    """:func:`load_yaml_mapping` for bytes already read (by a caller that also hashes them)."""
    return parse_mapping(decode_text(raw, str(path), error), str(path), error, json_only=path.suffix.lower() == ".json")


def loc_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = str(part)
            if not name.isprintable():  # a key holding a newline must not break the one-line message
                name = repr(name)[1:-1]
            out += ("." if out else "") + name
    return out


def describe_error(err: Any) -> tuple[tuple[Any, ...], str]:
    """One error of a pydantic ValidationError (``errors(include_input=False)``) as (location, message)."""
    # Unions report one error per branch with the branch name in loc; keep the data path.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (not part of the schema)"
    elif err["type"] == "missing":
        msg = "is required"
    return loc, msg.removeprefix("Value error, ")


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first error of a pydantic ValidationError as (field path, message), without the input value."""
    loc, msg = describe_error(exc.errors(include_url=False, include_input=False)[0])
    return loc_path(loc), msg


# -- where a value is written: YAML line numbers for a field path ---------------------------------------------


def compose(text: str) -> yaml.Node | None:
    """The YAML node tree of ``text`` (with each node's line), or None when it does not parse."""
    try:
        return yaml.compose(text, Loader=_Base)
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


def _path_parts(where: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in where.split("."):
        head, *indices = piece.split("[")
        if head:
            parts.append(head)
        parts += [int(i.rstrip("]")) for i in indices if i.rstrip("]").isdigit()]
    return parts


def line_of(root: yaml.Node | None, where: str | tuple[Any, ...]) -> int | None:
    """The 1-based line where the value at ``where`` is written: a pydantic location (``("indications", 0,
    "rule")``) or a dotted path that names list items by index or by their ``id`` or ``code``
    (``indications.suspicious-mass.basis``, ``bundles.77012``). A path that goes further than the file (a missing
    key) gives the line of the deepest part the file has."""
    if root is None:
        return None
    parts = list(where) if isinstance(where, tuple) else _path_parts(where)
    node, line = root, root.start_mark.line + 1
    i = 0
    while i < len(parts):
        found = None
        if isinstance(node, yaml.MappingNode):
            # Longest first: an id may itself hold a dot.
            for j in range(len(parts), i, -1):
                key = ".".join(str(p) for p in parts[i:j])
                hit = next((kv for kv in node.value if isinstance(kv[0], yaml.ScalarNode) and kv[0].value == key), None)
                if hit is not None:
                    found = (hit[1], hit[0].start_mark.line + 1, j)
                    break
        elif isinstance(node, yaml.SequenceNode):
            if isinstance(parts[i], int):
                if 0 <= int(parts[i]) < len(node.value):
                    item = node.value[int(parts[i])]
                    found = (item, item.start_mark.line + 1, i + 1)
            else:
                for j in range(len(parts), i, -1):
                    key = ".".join(str(p) for p in parts[i:j])
                    item = next((x for x in node.value if _item_id(x) == key), None)
                    if item is not None:
                        found = (item, item.start_mark.line + 1, j)
                        break
        if found is None:
            break
        node, line, i = found
    return line


def _item_id(node: yaml.Node) -> str | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value in ("id", "code") and isinstance(v, yaml.ScalarNode):
            return str(v.value)
    return None
