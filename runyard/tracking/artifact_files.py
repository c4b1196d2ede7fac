"""Writers that turn Python objects into artifact files (text, dicts, images, figures, tables)."""

from __future__ import annotations

import json
from typing import Any

from runyard.errors import InvalidParameterValue

__all__ = [
    "read_table",
    "write_dict",
    "write_figure",
    "write_image",
    "write_table",
    "write_text",
]


def write_text(path: str, text: str) -> None:
    """UTF-8 text."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_dict(path: str, dictionary: Any) -> None:
    """YAML for ``.yaml``/``.yml`` files, indented JSON otherwise."""
    with open(path, "w", encoding="utf-8") as handle:
        if path.endswith((".yaml", ".yml")):
            import yaml

            yaml.safe_dump(dictionary, handle, default_flow_style=False, sort_keys=False)
        else:
            json.dump(dictionary, handle, indent=2, default=str)


def write_figure(path: str, figure: Any, save_kwargs: dict[str, Any]) -> None:
    """A matplotlib figure (``savefig``) or a plotly figure (HTML or static image)."""
    if hasattr(figure, "savefig"):
        figure.savefig(path, **save_kwargs)
    elif hasattr(figure, "write_html"):
        if path.endswith(".html"):
            figure.write_html(path, **save_kwargs)
        else:
            figure.write_image(path, **save_kwargs)
    else:
        raise InvalidParameterValue(
            f"Unsupported figure type {type(figure).__name__}: pass a matplotlib or plotly figure."
        )


def _to_pil(image: Any) -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise InvalidParameterValue(
            "log_image needs Pillow: pip install 'runyard[images]' (or pillow)."
        ) from None
    if isinstance(image, Image.Image):
        return image
    import numpy as np

    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise InvalidParameterValue(
            f"Images must be HxW, HxWx1, HxWx3 or HxWx4 arrays; got shape {arr.shape}."
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise InvalidParameterValue("Float images must have values in [0, 1].")
        arr = (arr * 255).round().astype(np.uint8)
    elif arr.dtype != np.uint8:
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise InvalidParameterValue("Integer images must have values in [0, 255].")
        arr = arr.astype(np.uint8)
    return Image.fromarray(arr)


def write_image(path: str, image: Any) -> None:
    """A PIL image or a numpy array (uint8 0–255 or float 0–1), format from the extension."""
    _to_pil(image).save(path)


def read_table(path: str) -> Any:
    """A table written by :func:`write_table`, as a DataFrame."""
    import pandas as pd

    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    return pd.DataFrame(doc["data"], columns=doc["columns"])


def write_table(path: str, data: Any, existing: Any = None) -> None:
    """A dict of columns or a DataFrame as MLflow's table JSON: ``{"columns", "data"}``.

    ``existing`` (a DataFrame) is kept and ``data`` appended to it, as MLflow does when a table
    is logged twice to the same file.
    """
    import pandas as pd

    if isinstance(data, dict):
        frame = pd.DataFrame(data)
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise InvalidParameterValue("log_table takes a dict of columns or a pandas DataFrame.")
    if not path.endswith(".json"):
        raise InvalidParameterValue("log_table artifact files must end with .json")
    if existing is not None:
        frame = pd.concat([existing, frame], ignore_index=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(frame.to_json(orient="split", index=False, date_format="iso"))
