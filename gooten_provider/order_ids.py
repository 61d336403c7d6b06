"""Gooten order ids (Safe IDs such as ``115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4``).

A Safe ID is Gooten's order number, a dash, and a GUID. Ids handed to the operator in bulk are checked for
that shape before any request, because what a pipeline really passes when something upstream went wrong
(``None``, ``"undefined"``, an unrendered ``{{ ... }}``, ids joined by spaces) would otherwise each cost a
read and end as "order not found". Accounts whose ids have another shape turn the check off
(``check_shape=False``); the hygiene checks (no blanks, control or invisible characters) always apply.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from collections.abc import Iterable, Mapping

#: Gooten's Safe ID: ``{order number}-{GUID}``, the GUID in either letter case.
SAFE_ID_PATTERN = re.compile(
    r"\d+-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE | re.ASCII
)
SAFE_ID_EXAMPLE = "115557-b5c97bb2-934d-48aa-9ad2-a565154b5cd4"
# What a template or a serialiser writes for a missing value; never an order id.
_MISSING_WORDS = frozenset({"none", "null", "undefined", "nan", "nil"})
# Separators users try that Gooten ids never contain; only commas and newlines split a string.
_OTHER_SEPARATORS = re.compile(r"[ \t;|]+")
# Unicode categories that have no place in an id: controls, invisible format characters (zero-width
# space, BOM, ...), lone surrogates (which also break logging), unassigned and private-use code points.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Co", "Zl", "Zp"})


def _bad_character(order_id: str) -> str | None:
    """Describe the first character an order id cannot hold, or return ``None``."""
    for position, char in enumerate(order_id):
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES or char.isspace():
            name = unicodedata.name(char, "") if category != "Cs" else "a lone surrogate"
            return f"U+{ord(char):04X} {name or 'an invisible character'} at position {position + 1}"
    return None


def normalize_order_id(order_id: object) -> str:
    """Return the order id stripped of surrounding blanks.

    :raises ValueError: the id is not a string, is empty, is what a template writes for a missing value or
        an unrendered template, joins several ids, or holds a blank, control or invisible character.
    """
    if not isinstance(order_id, str):
        raise ValueError(
            f"Invalid Gooten order id {order_id!r} ({type(order_id).__name__}): an order id must be a "
            f"non-empty string, Gooten's Safe ID such as '{SAFE_ID_EXAMPLE}'."
        )
    stripped = order_id.strip()
    if not stripped:
        raise ValueError("Invalid Gooten order id '': an order id must be a non-empty string.")
    why = None
    parts = _OTHER_SEPARATORS.split(stripped)
    if stripped.casefold() in _MISSING_WORDS:
        why = "it is what a template or a serialiser writes for a missing value"
    elif is_template(stripped):
        why = "it is an unrendered template: is it in a field that is not templated, or in params?"
    elif len(parts) > 1 and all(SAFE_ID_PATTERN.fullmatch(part) for part in parts):
        why = (
            f"it looks like {len(parts)} ids joined by spaces, tabs, ';' or '|'; separate ids with commas "
            "or newlines, or pass a list"
        )
    elif (bad := _bad_character(stripped)) is not None:
        why = (
            f"it holds {bad}; an order id has no blanks, control or invisible characters (was it copied "
            "from a document or a spreadsheet?)"
        )
    if why is not None:
        shown = stripped.encode("unicode_escape").decode("ascii")  # printable and loggable: no raw NUL
        raise ValueError(f"Invalid Gooten order id '{shown}': {why}.")
    return stripped


def check_safe_id(order_id: str) -> str:
    """Return ``order_id`` if it has the shape of a Gooten Safe ID (``{number}-{GUID}``).

    :raises ValueError: it does not; the message says what is allowed, and how to turn the check off.
    """
    if SAFE_ID_PATTERN.fullmatch(order_id):
        return order_id
    raise ValueError(
        f"Invalid Gooten order id {order_id!r}: it does not have the shape of a Gooten Safe ID, the order "
        f"number, a dash and a GUID, such as '{SAFE_ID_EXAMPLE}'. If your account's ids have another "
        "shape, turn this check off (check_order_ids=False)."
    )


def parse_order_ids(value: object, *, check_shape: bool = True) -> list[str]:
    """Turn what a user or a template gives into a list of unique order ids, first occurrence first.

    Accepts one id, a list or tuple of ids, or a string holding a list literal (``"['1-a', '1-b']"``, as a
    rendered template gives) or ids separated by commas or newlines. Duplicates are dropped, also when
    they differ only in letter case (a Safe ID's GUID is case-insensitive at Gooten), so that no order is
    changed twice at once.

    :param check_shape: also require Gooten's Safe ID shape (:func:`check_safe_id`).
    :raises ValueError: an id is not a non-empty string, is not a Safe ID, or the value is ``None``; the
        message names it.
    """
    if value is None:
        raise ValueError("No order ids given (None): pass one order id or a list of them.")
    if isinstance(value, str):
        items: list[object] = _split_order_id_text(value)
    elif isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping, set, frozenset)):
        items = list(value)  # a list, a tuple, or Airflow's lazy sequence of a mapped task's XComs
    else:
        kind = "a set, whose order is random" if isinstance(value, (set, frozenset)) else type(value).__name__
        raise ValueError(
            f"Invalid order ids {value!r} ({kind}): pass one order id (a string) or a list of them."
        )
    unique: dict[str, str] = {}
    for item in items:
        order_id = normalize_order_id(item)
        if check_shape:
            check_safe_id(order_id)
        unique.setdefault(order_id.casefold(), order_id)
    return list(unique.values())


def parse_task_order_ids(
    value: object, *, task_id: str, argument: str, check_shape: bool = True
) -> list[str]:
    """:func:`parse_order_ids` for a task's argument: an error names the task and the argument.

    The operator and the sensor check their ids when the task runs (a template or an XCom gives them), so
    the error must say which task and which argument, e.g. ``set_status: order_ids: No order ids given
    (None)`` for a template that rendered ``None``.

    :raises ValueError: as :func:`parse_order_ids`, the message prefixed with ``{task_id}: {argument}: ``.
    """
    try:
        return parse_order_ids(value, check_shape=check_shape)
    except ValueError as exc:
        raise ValueError(f"{task_id}: {argument}: {exc}") from None


def _split_order_id_text(text: str) -> list[object]:
    stripped = text.strip()
    # An unrendered template is one (bad) id, for normalize_order_id to name; not a literal to parse.
    if stripped.startswith(("[", "(", "{")) and not is_template(stripped):
        try:
            parsed = ast.literal_eval(stripped)
        except (ValueError, SyntaxError):
            raise ValueError(
                f"Invalid order ids {text!r}: it looks like a list but is not a valid list literal."
            ) from None
        if isinstance(parsed, (set, frozenset, dict)):
            raise ValueError(
                f"Invalid order ids {text!r}: a {type(parsed).__name__} literal; pass a list, such as "
                "['1-a', '1-b'] (a set has no order, so results would not follow the input)."
            )
        return list(parsed) if isinstance(parsed, (list, tuple)) else [parsed]
    return [part for part in re.split(r"[,\n\r]+", stripped) if part.strip()]


def is_template(value: object) -> bool:
    """Whether ``value`` is a Jinja template not rendered yet (``{{ ... }}`` or ``{% ... %}``)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)
