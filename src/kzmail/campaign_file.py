"""Load a campaign YAML file into a validated `Campaign`.

Every problem is reported as one `CampaignError` naming the file, the line and the
dotted key. Relative paths inside the file resolve against the file's own folder.
"""

from __future__ import annotations

import difflib
from importlib.resources import files
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from kzmail.dkim.signer import load_key
from kzmail.errors import CampaignError, DkimKeyError, NoCampaignFile, SeveralCampaigns
from kzmail.models import Campaign

Loc = tuple[str | int, ...]

_PATH_KEYS: tuple[Loc, ...] = (
    ("template",),
    ("article", "file"),
    ("outbox",),
    ("dkim", "key_file"),
    ("smtp", "ca_file"),
)
_MUST_EXIST: tuple[Loc, ...] = (("template",), ("article", "file"), ("dkim", "key_file"))


def default_template() -> Path:
    """The template shipped inside the package, for a campaign that names none."""
    return Path(str(files("kzmail").joinpath("assets", "newsletter.mjml")))


def _line_map(node: yaml.Node, loc: Loc = (), out: dict[Loc, int] | None = None) -> dict[Loc, int]:
    """Map each key path of the YAML document to the 1-based line where it stands."""
    out = {} if out is None else out
    out.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*loc, str(key.value))
            out[sub] = key.start_mark.line + 1
            _line_map(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*loc, index), out)
    return out


def _line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    while loc not in lines and loc:
        loc = loc[:-1]
    return lines.get(loc)


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc) or "(file)"


def _get(data: dict[str, Any], loc: Loc) -> Any:
    value: Any = data
    for part in loc:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _set(data: dict[str, Any], loc: Loc, value: Any) -> None:
    target: Any = data
    for part in loc[:-1]:
        target = target[part]
    target[loc[-1]] = value


def _refuse_aliases(text: str, path: Path) -> None:
    """Refuse YAML aliases before anything expands them.

    A few nested aliases in a small file expand to gigabytes (the "billion laughs"); a
    campaign needs none, so the first one is refused with its line, from the event stream,
    which never builds the expansion.
    """
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            raise CampaignError(
                f"YAML aliases (*{event.anchor}) are not allowed in a campaign "
                "file: write the value out",
                path=path,
                line=mark.line + 1 if mark else None,
            )


def _parse(path: Path) -> tuple[dict[str, Any], dict[Loc, int]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CampaignError("campaign file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"cannot read campaign file ({exc})", path=path) from exc
    try:
        _refuse_aliases(text, path)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise CampaignError(f"invalid YAML: {exc.problem or exc}", path=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise CampaignError(f"invalid YAML: {exc}", path=path) from exc
    if not isinstance(data, dict) or node is None:
        raise CampaignError("a campaign file must be a YAML mapping of keys", path=path, line=1)
    return data, _line_map(node)


def load(path: Path) -> Campaign:
    """Read, resolve and validate the campaign at `path`."""
    data, lines = _parse(path)
    folder = path.parent
    if isinstance(data.get("smtp"), dict) and "password" in data["smtp"]:
        raise CampaignError(
            "a password never lives in the campaign file: name an environment variable "
            "in smtp.password_env instead",
            path=path,
            line=lines.get(("smtp", "password")),
            key="smtp.password",
        )
    for loc in _PATH_KEYS:
        value = _get(data, loc)
        if isinstance(value, str) and value.strip():
            _set(data, loc, (folder / value.strip()).resolve())
    if data.get("template") is None:
        data["template"] = default_template()
    relays = data.get("relays")
    for relay in relays if isinstance(relays, list) else []:
        value = relay.get("ca_file") if isinstance(relay, dict) else None
        if isinstance(value, str) and value.strip():
            relay["ca_file"] = (folder / value.strip()).resolve()
    for loc in _MUST_EXIST:
        value = _get(data, loc)
        if isinstance(value, Path) and not value.is_file():
            raise CampaignError(
                f"file not found: {value}", path=path, line=_line_of(lines, loc), key=_dotted(loc)
            )
    single = _subscriber_sources(data, lines, path)
    data.setdefault("name", path.stem)
    data["source_path"] = path
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # a misspelt key also leaves its right spelling missing: name the misspelling
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        loc = tuple(first["loc"])
        loc = tuple("from" if part == "from_" else part for part in loc)
        if single and loc[:2] == ("subscribers", 0):
            loc = ("subscribers", *loc[2:])
        reason = first["msg"].removeprefix("Value error, ")
        if first["type"] == "missing":
            reason = "required key is missing"
        elif first["type"] == "extra_forbidden":
            reason = _unknown_key(loc)
        raise CampaignError(reason, path=path, line=_line_of(lines, loc), key=_dotted(loc)) from exc
    if campaign.dkim is not None:
        try:
            load_key(campaign.dkim.key_file)
        except DkimKeyError as exc:
            raise CampaignError(
                str(exc), path=path, line=_line_of(lines, ("dkim", "key_file")), key="dkim.key_file"
            ) from exc
    return campaign


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The settings model that the mapping at `loc` is validated as."""
    model: type[BaseModel] = Campaign
    for part in loc:
        if isinstance(part, int):
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        if field is None:
            return None
        found = _model_in(field.annotation)
        if found is None:
            return None
        model = found
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _unknown_key(loc: Loc) -> str:
    """ "unknown key; did you mean subject?", or the keys that may stand there."""
    model = _model_at(loc[:-1])
    if model is None:
        return "unknown key"
    keys = [f.alias or name for name, f in model.model_fields.items() if name != "source_path"]
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]}?"
    return f"unknown key (the keys here are {', '.join(keys)})"


def _subscriber_sources(data: dict[str, Any], lines: dict[Loc, int], path: Path) -> bool:
    """Normalise `subscribers:` (a path, a mapping or a list of either) to a list of
    mappings with resolved, existing paths; True if the file gave a single entry."""
    value = data.get("subscribers")
    if value is None:
        return False
    single = not isinstance(value, list)
    entries = [value] if single else value
    normalised: list[Any] = []
    for index, entry in enumerate(entries):
        loc: Loc = ("subscribers",) if single else ("subscribers", index)
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict):
            normalised.append(entry)  # pydantic names the key and the problem
            continue
        entry = dict(entry)
        raw = entry.get("path")
        if isinstance(raw, str) and raw.strip():
            resolved = (path.parent / raw.strip()).resolve()
            if not resolved.is_file():
                where = (*loc, "path") if (*loc, "path") in lines else loc
                raise CampaignError(
                    f"file not found: {resolved}",
                    path=path,
                    line=_line_of(lines, where),
                    key=_dotted(where),
                )
            entry["path"] = resolved
        normalised.append(entry)
    data["subscribers"] = normalised
    return single


def find_single(folder: Path) -> Path:
    """The only campaign in `folder` (for commands run without a campaign argument).

    Raises `NoCampaignFile` when there is none and `SeveralCampaigns` when there are more.
    """
    found = sorted(p for p in folder.glob("*.y*ml") if p.suffix in {".yaml", ".yml"})
    if len(found) == 1:
        return found[0]
    if not found:
        raise NoCampaignFile(
            "no campaign file (*.yaml) found; name one, e.g. "
            "`kzmail preview campaigns/kasachstan.yaml`",
            path=folder,
        )
    names = ", ".join(p.name for p in found)
    raise SeveralCampaigns(f"several campaigns ({names}); name the one you mean", path=folder)
