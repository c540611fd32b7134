"""``privaudit policy validate|show``: check a policy file, or print it for a person."""

from __future__ import annotations

from pathlib import Path

import click

from privaudit.policy import Policy, load_policy

from .terminal import Output, plain

_POLICY_FILE = click.Path(dir_okay=False, path_type=Path)


@click.group()
def policy() -> None:
    """Validate or show a policy file (policy as code)."""


@policy.command()
@click.argument("file", type=_POLICY_FILE)
def validate(file: Path) -> None:
    """Check FILE; print one line naming the bad field and exit 2 if it is refused."""
    compiled = load_policy(file)
    labels = ", ".join(f"{v.label} (from {v.effective_from.isoformat()})" for v in compiled.versions)
    Output().line(plain(f"{file}: ok: policy {compiled.policy_id}, {len(compiled.versions)} version(s): {labels}"))


@policy.command()
@click.argument("file", type=_POLICY_FILE, required=False)
@click.option("--version", "label", help="Show only this version (default: all).")
@click.option("--json", "json_mode", is_flag=True, help="Print the validated document as JSON.")
def show(file: Path | None, label: str | None, json_mode: bool) -> None:
    """Print FILE (default: the shipped policy) as readable tables, Korean text included."""
    compiled = load_policy(file)
    out = Output(json_mode)
    if label is not None and label not in {v.label for v in compiled.versions}:
        raise click.BadParameter(f"no version {label!r} in {compiled.source}", param_hint="--version")
    if json_mode:
        out.json(compiled.document.model_dump(mode="json"))
        return
    _show(out, compiled, label)


def _show(out: Output, compiled: Policy, label: str | None) -> None:
    doc = compiled.document
    out.line(f"[bold]{plain(doc.policy_id)}[/]: {plain(doc.controller)}; services {plain(', '.join(doc.services))}; "
             f"home country {plain(doc.home_country)}")
    out.line(plain(f"source: {doc.source_document}  ({compiled.source})"))
    categories = {item.code: item for item in doc.items}
    out.table(
        "Item vocabulary",
        ("code", "category", "이름", "name", "law"),
        ((i.code, i.category, i.name_ko, i.name_en, i.law) for i in doc.items),
    )
    for version in doc.versions:
        if label is not None and version.version != label:
            continue
        out.line(f"\n[bold]version {plain(version.version)}[/], in force from {version.effective_from}")
        if version.note:
            out.line(plain(version.note))
        out.table(
            "Purposes (이용 목적)",
            ("code", "목적", "purpose", "items", "source"),
            ((p.code, p.text_ko, p.text_en, ", ".join(p.items), p.source) for p in version.purposes),
        )
        out.table(
            "Items collected (수집 항목)",
            ("code", "이름", "required", "source"),
            ((c.code, categories[c.code].name_ko, "yes" if c.required else "", c.source)
             for c in version.collected_items),
        )
        out.table(
            "Recipients (제3자 제공)",
            ("id", "이름", "countries", "purposes", "items", "basis", "source"),
            (
                (r.id, r.name_ko, ", ".join(r.countries), ", ".join(r.purposes), ", ".join(r.items), r.legal_basis,
                 r.source)
                for r in version.recipients
            ),
        )
        out.table(
            "Processors (위탁)",
            ("id", "이름", "tasks", "items", "countries", "sub-processors", "source"),
            (
                (p.id, p.name_ko, ", ".join(p.tasks), ", ".join(p.items), ", ".join(p.countries),
                 ", ".join(p.sub_processors), p.source)
                for p in version.processors
            ),
        )
        if not version.processors:
            out.line("(no processor declared: every transfer to a processor is PA-005)")
        out.table("Not retained", ("item", "source"), ((n.item, n.source) for n in version.not_retained))
        r, b = version.retention, version.bulk_access
        out.line(plain(
            f"retention: until {' or '.join(r.ends_with)}; "
            f"afterwards only {', '.join(r.after_end_purposes) or 'nothing'} and deletion"
        ))
        out.line(f"bulk access: more than {b.max_distinct_subjects} distinct subjects per actor "
                 f"in {b.window_minutes} min")
