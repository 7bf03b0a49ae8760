"""Label schemas: their description (the groups and labels a page shows), validation of a
reviewer's labels against it, and creation. Every module that reads or checks labels uses these.
"""


from django.db.models.expressions import RawSQL
from django.utils.translation import gettext

from .errors import InvalidInput
from .models import Label, LabelGroup, LabelSchema


def label_schema_describe(schema: LabelSchema) -> dict:
    """Describe a schema for the page and the API, numbering labels for the shortcut keys."""
    described = getattr(schema, "_described", None)
    if described is not None:  # read by the statement that looked up the assignment
        return described
    # One query: groups left-joined to their labels (a group without labels still shows).
    rows = (LabelGroup.objects.filter(schema=schema)
            .values_list("id", "key", "name", "kind", "required", "labels__key", "labels__name")
            .order_by("position", "id", "labels__position", "labels__id"))
    return label_schema_from_rows(schema.name, rows, schema.speaker_choices())


def label_rows_sql(schema_column: str) -> str:
    """An SQL expression with the rows ``label_schema_describe`` reads (a JSON array), so a
    statement that looks up an assignment brings its schema along."""
    return (f"(SELECT json_agg(json_build_array(g.id, g.key, g.name, g.kind, g.required, l.key, l.name) "  # noqa: S608  # nosec B608
            f"ORDER BY g.position, g.id, l.position, l.id) FROM reviews_labelgroup g "
            f"LEFT JOIN reviews_label l ON l.group_id = g.id WHERE g.schema_id = {schema_column})")


def label_rows_annotation() -> RawSQL:
    """``label_rows_sql`` for a query of assignments that joins their clip's project."""
    return RawSQL(label_rows_sql('"reviews_project"."label_schema_id"'), [])  # noqa: S611  # nosec B611


def label_schema_attach(schema: LabelSchema, rows: list | None) -> dict:
    """Keep the description built from ``label_rows_sql``'s rows on the schema object."""
    schema._described = label_schema_from_rows(schema.name, rows or [], schema.speaker_choices())
    return schema._described


def label_schema_from_rows(schema_name: str, rows, speakers=()) -> dict:
    groups, by_id, number = [], {}, 0
    for group_id, key, name, kind, required, label_key, label_name in rows:
        group = by_id.get(group_id)
        if group is None:
            group = by_id[group_id] = {"key": key, "name": name, "kind": kind, "required": required, "labels": []}
            groups.append(group)
        if label_key is not None:
            number += 1
            group["labels"].append({"key": label_key, "name": label_name,
                                    "shortcut": number if number <= 9 else None})
    # Issue 12: segments are asked for when the schema names speakers (None: not asked).
    return {"name": schema_name, "groups": groups, "segments": {"speakers": list(speakers)} if speakers else None}


def label_schema_create(*, name: str, groups: list[tuple], segment_speakers: list[str] = ()) -> LabelSchema:
    """Create a label schema from ``[(key, name, kind, required, [(label_key, label_name), ...]), ...]``
    (and the speakers of its segments, issue 12; none: no segments).

    The one builder the demo seed, the tests and the benchmarks share."""
    schema = LabelSchema.objects.create(name=name, segment_speakers="\n".join(segment_speakers))
    for position, (key, group_name, kind, required, labels) in enumerate(groups):
        group = LabelGroup.objects.create(schema=schema, key=key, name=group_name, kind=kind, required=required,
                                          position=position)
        Label.objects.bulk_create([Label(group=group, key=label_key, name=label_name, position=label_position)
                                   for label_position, (label_key, label_name) in enumerate(labels)])
    return schema


def labels_normalize(labels) -> dict:
    """What ``labels_validate`` returns for labels it accepts, without the schema: a statement
    can write them while it reads the schema, and a refusal afterwards rolls the write back."""
    if labels in (None, ""):
        return {}
    if not isinstance(labels, dict):
        raise InvalidInput(gettext("Labels must map group keys to lists of label keys."), code="invalid_labels")
    clean = {}
    for group_key, chosen in labels.items():
        chosen = [chosen] if isinstance(chosen, str) else chosen
        if isinstance(chosen, list) and chosen and all(isinstance(c, str) for c in chosen):
            clean[str(group_key)] = sorted(set(chosen))
    return clean


def labels_validate(schema: dict, labels, *, complete: bool) -> dict:
    """Check labels ({group_key: [label_key, ...]}) against a described schema."""
    if labels in (None, ""):
        labels = {}
    if not isinstance(labels, dict):
        raise InvalidInput(gettext("Labels must map group keys to lists of label keys."), code="invalid_labels")
    groups = {g["key"]: g for g in schema["groups"]}
    clean, errors = {}, {}
    for group_key, chosen in labels.items():
        group = groups.get(group_key)
        if group is None:
            errors[str(group_key)[:50]] = gettext("Unknown label group.")
            continue
        if isinstance(chosen, str):
            chosen = [chosen]
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            errors[group_key] = gettext("A list of label keys.")
            continue
        allowed = {label["key"] for label in group["labels"]}
        unknown = [c for c in chosen if c not in allowed]
        if unknown:
            errors[group_key] = gettext("Unknown label.")
        elif group["kind"] == "single" and len(set(chosen)) > 1:
            errors[group_key] = gettext("Choose one.")
        elif chosen:
            clean[group_key] = sorted(set(chosen))
    if complete:
        for group in schema["groups"]:
            if group["required"] and not clean.get(group["key"]) and group["key"] not in errors:
                errors[group["key"]] = gettext("Required.")
    if errors:
        raise InvalidInput(gettext("Some labels are not valid."), code="invalid_labels", fields=errors)
    return clean
