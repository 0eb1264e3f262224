"""The error wording: pydantic's errors as the owner reads them, a key path (`cameras[0].url`)
and a plain message ("must be a number", not "Input should be a valid number"). The agent's
and the registry's configs are worded alike."""

from collections.abc import Mapping
from typing import Any

from contract.config.fields import Loc

# Pydantic error type -> message, formatted with the error's context.
_MESSAGES: dict[str, str] = {
    "missing": "missing (required)",
    "extra_forbidden": "unknown key",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "path_type": "must be a file path",
    "literal_error": "must be {expected}",
    "union_tag_invalid": "must be one of {expected_tags}",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "too_short": "must not be empty",  # only `cameras` has a minimum length (1)
    "config_rule": "{message}",
}

# Pydantic puts the tag of a discriminated union into the location; owners never write it.
_UNION_TAGS = {("recording", "record"), ("recording", "directory"), ("recording", "onvif")}


def error_message(error: Mapping[str, Any]) -> str:
    template = _MESSAGES.get(error["type"])
    if template is None:
        text = str(error["msg"]).removeprefix("Value error, ")
        # "Input should be ..." -> "input should be ...", but "CREDENTIALS_DIRECTORY" stays.
        return text[:1].lower() + text[1:] if text[1:2].islower() else text
    return template.format(**{key: _plain(value) for key, value in error.get("ctx", {}).items()})


def _plain(value: object) -> object:
    """1.0 -> 1, so bounds read as the owner wrote them."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def clean_loc(error: Mapping[str, Any]) -> Loc:
    loc: list[str | int] = []
    for part in error["loc"]:
        if loc and (loc[-1], part) in _UNION_TAGS:
            continue
        loc.append(part)
    if error["type"] == "union_tag_invalid":
        loc.append(str(error["ctx"]["discriminator"]).strip("'"))
    return tuple(loc)


def format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top level)"
