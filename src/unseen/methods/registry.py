"""Methods are looked up by name, like timm models: `get_method("cegzsl")`."""

from __future__ import annotations

from importlib import import_module

from unseen.errors import UnseenInputError
from unseen.methods.base import GZSLMethod

# name -> "module:ClassName"; imported lazily so that `unseen methods` stays fast.
_METHODS = {
    "eszsl": "unseen.methods.eszsl:ESZSL",
    "cegzsl": "unseen.methods.cegzsl:CEGZSL",
    "fclswgan": "unseen.methods.fclswgan:FCLSWGAN",
    "duet": "unseen.methods.duet:DUET",
}


def method_names() -> list[str]:
    return sorted(_METHODS)


def get_method(name: str) -> type[GZSLMethod]:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in _METHODS:
        raise UnseenInputError(f"method '{name}': unknown; expected one of "
                               f"{', '.join(method_names())}")
    module_name, class_name = _METHODS[key].split(":")
    return getattr(import_module(module_name), class_name)
