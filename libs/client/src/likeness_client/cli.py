"""`likeness`: the operators' command-line tool over the mesh's gRPC (mTLS as an operator identity).

With no flags it uses the development identity and addresses of `make run`; see `likeness --help`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from likeness.privacy.v1 import privacy_pb2, rights_pb2
from likeness.render.v1 import render_pb2
from likeness_client.batch import IMAGE_SUFFIXES, inputs, run_batch
from likeness_client.client import AsyncClient, Client
from likeness_client.config import SERVICES, ConfigError, Endpoints, Identity
from likeness_client.retry import LikenessError

console = Console()
errors = Console(stderr=True)

# How the CLI's calls are counted in the usage statistics (interface "cli").
CLI_NAME = "likeness-cli/0.1.0"


@dataclass
class Options:
    cert: str | None
    key: str | None
    ca: str | None
    addresses: dict[str, str | None]
    deadline: float

    def identity(self) -> Identity:
        return Identity.discover(self.cert, self.key, self.ca)

    def endpoints(self, identity: Identity | None = None) -> Endpoints:
        a = self.addresses
        run_dir = (identity or self.identity()).run_dir
        return Endpoints.from_env(None, run_dir, render=a.get("render"), privacy=a.get("privacy"), faces=a.get("faces"))

    def client(self) -> Client:
        identity = self.identity()
        return Client(identity, self.endpoints(identity), deadline=self.deadline, client_name=CLI_NAME)

    def async_client(self) -> AsyncClient:
        identity = self.identity()
        return AsyncClient(identity, self.endpoints(identity), deadline=self.deadline, client_name=CLI_NAME)


def _fail(message: str, code: int = 2) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--cert", type=click.Path(dir_okay=False), help="Client certificate (PEM); default: LIKENESS_CLIENT_* or make run's operator/dev."
)
@click.option("--key", type=click.Path(dir_okay=False), help="Its private key (PEM).")
@click.option("--ca", type=click.Path(dir_okay=False), help="The mesh CA bundle (PEM).")
@click.option("--render", "render_addr", metavar="HOST:PORT", help="Render service address (default: LIKENESS_RENDER_ADDR or make run's).")
@click.option("--privacy", "privacy_addr", metavar="HOST:PORT", help="Privacy service address.")
@click.option("--faces", "faces_addr", metavar="HOST:PORT", help="Faces service address.")
@click.option("--deadline", type=float, default=120.0, show_default=True, help="Seconds each call may take, retries included.")
@click.pass_context
def cli(
    ctx: click.Context,
    cert: str | None,
    key: str | None,
    ca: str | None,
    render_addr: str | None,
    privacy_addr: str | None,
    faces_addr: str | None,
    deadline: float,
) -> None:
    """Likeness operator tool: specs, batch ID photos, checks, erasures, ledger, templates."""
    ctx.obj = Options(cert, key, ca, {"render": render_addr, "privacy": privacy_addr, "faces": faces_addr}, deadline)


def _client(ctx: click.Context) -> Client:
    try:
        return ctx.obj.client()
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable


# --- specs -------------------------------------------------------------------------------------


@cli.group()
def specs() -> None:
    """Photo specifications of the catalog."""


@specs.command("search")
@click.argument("query", default="")
@click.option("--country", default="", help="Country code or name (JP, Japan).")
@click.option("--document", default="", help="Document kind (passport, visa, id).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.pass_context
def specs_search(ctx: click.Context, query: str, country: str, document: str, as_json: bool) -> None:
    """Specs whose name, country or document match QUERY."""
    with _client(ctx) as client:
        found = _guard(lambda: client.list_specs(query, country, document))
    if as_json:
        for spec in found:
            click.echo(
                json.dumps(
                    {
                        "id": spec.id,
                        "country": spec.country_code,
                        "document": spec.document,
                        "width_mm": spec.width_mm,
                        "height_mm": spec.height_mm,
                    }
                )
            )
        return
    table = Table(title=f"{len(found)} spec(s)")
    for column in ("id", "country", "document", "size (mm)", "pixels", "dpi"):
        table.add_column(column)
    for spec in found:
        pixels = f"{spec.width_px}x{spec.height_px}" if spec.width_px else ""
        table.add_row(
            spec.id,
            f"{spec.country_code} {spec.country}",
            spec.document,
            f"{spec.width_mm:g}x{spec.height_mm:g}",
            pixels,
            str(spec.dpi or ""),
        )
    console.print(table)
    if not found:
        sys.exit(1)


def _guard(call: Any, role: str = "") -> Any:
    """Run one client call; a refusal ends the command with its code (and, refused for its identity, the role it needs)."""
    try:
        return call()
    except LikenessError as exc:
        hint = f" (this needs an operator certificate with the {role} role)" if role and exc.code == "CALLER_NOT_ALLOWED" else ""
        _fail(f"{exc.code}: {exc.message}{hint}", 1)


@cli.command("id-photo")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--spec", required=True, help="Spec id (see `likeness specs search`).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder (made if missing).")
@click.option("--sheet", default="", help="Also make a print sheet on this paper (4r, a4, ...).")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64), help="Photos in flight at once.")
@click.option("--keep", is_flag=True, help="Keep the batch's data in the mesh (default: erase it once downloaded).")
@click.pass_context
def id_photo(ctx: click.Context, folder: Path, spec: str, out: Path, sheet: str, concurrency: int, keep: bool) -> None:
    """Make ID photos of every image in FOLDER into OUT. Re-running skips the files already done; exits 1 when any failed."""
    sources = inputs(folder)
    if not sources:
        _fail(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    out.mkdir(parents=True, exist_ok=True)
    try:
        outcomes = asyncio.run(run_batch(ctx.obj.async_client, errors, sources, out, spec, sheet, concurrency, keep))
    except ConfigError as exc:
        _fail(str(exc))
    except LikenessError as exc:
        _fail(f"{exc.code}: {exc.message}", 1)
    outcomes.sort(key=lambda o: o.name)
    table = Table(title=f"id-photo {spec} → {out}")
    for column in ("file", "result", "code", "detail"):
        table.add_column(column)
    colours = {"ok": "green", "skipped": "dim", "rejected": "yellow", "failed": "red"}
    for o in outcomes:
        table.add_row(o.name, f"[{colours[o.status]}]{o.status}[/]", o.code, o.detail)
    console.print(table)
    counts = {status: sum(o.status == status for o in outcomes) for status in colours}
    console.print(" ".join(f"{status}={count}" for status, count in counts.items()), highlight=False)
    if counts["rejected"] or counts["failed"]:
        sys.exit(1)


@cli.command("check")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--spec", required=True, help="Spec id.")
@click.pass_context
def check(ctx: click.Context, photo: Path, spec: str) -> None:
    """Check an unedited PHOTO against a spec; exits 1 when it does not pass."""
    with _client(ctx) as client:
        subject = _guard(lambda: client.register_subject()).subject_id
        try:
            report = _guard(lambda: client.check_id_photo(subject, photo.read_bytes(), spec))
        finally:
            client.request_erasure(subject, reason="operator")
    table = Table(title=f"{photo.name}: {'passed' if report.passed else 'not passed'} ({spec})")
    for column in ("severity", "code", "message", "measured", "allowed"):
        table.add_column(column)
    for issue in report.issues:
        allowed = f"{issue.allowed.min:g}..{issue.allowed.max:g}" if issue.HasField("allowed") else ""
        table.add_row(
            render_pb2.Severity.Name(issue.severity).removeprefix("SEVERITY_"), issue.code, issue.message, f"{issue.measured:g}", allowed
        )
    console.print(table)
    if not report.passed:
        sys.exit(1)


# --- privacy -----------------------------------------------------------------------------------


@cli.group()
def erasure() -> None:
    """Erasures of data subjects."""


@erasure.command("status")
@click.argument("erasure_id")
@click.pass_context
def erasure_status(ctx: click.Context, erasure_id: str) -> None:
    """Progress and receipts of erasure ERASURE_ID."""
    with _client(ctx) as client:
        found = _guard(lambda: client.get_erasure(erasure_id))
    status = privacy_pb2.ErasureStatus.Name(found.status).removeprefix("ERASURE_STATUS_").lower()
    console.print(
        f"erasure {found.erasure_id}: [bold]{status}[/]  requested {found.requested_at.ToJsonString()}  deadline {found.deadline.ToJsonString()}"
    )
    table = Table()
    for column in ("holder", "erased", "remaining", "attempts", "last error"):
        table.add_column(column)
    for r in found.receipts:
        counts = lambda items: ", ".join(f"{c.category}={c.count}" for c in items)  # noqa: E731
        table.add_row(r.holder, counts(r.erased), counts(r.remaining), str(r.attempts), r.last_error)
    console.print(table)
    if found.ledger_hash:
        console.print(f"ledger entry {found.ledger_hash}", highlight=False)


@cli.group()
def subjects() -> None:
    """What is kept about a subject (support role; never content)."""


@subjects.command("inventory")
@click.argument("subject_id")
@click.option("--purpose", required=True, help="Why you look (written to the access log), e.g. 'ticket 4711'.")
@click.pass_context
def subjects_inventory(ctx: click.Context, subject_id: str, purpose: str) -> None:
    """SUBJECT_ID's state and every holder's counts per category."""
    with _client(ctx) as client:
        reply = _guard(lambda: client.subject_inventory(subject_id, purpose))
    state = privacy_pb2.SubjectState.Name(reply.subject.state).removeprefix("SUBJECT_STATE_").lower()
    console.print(f"subject {reply.subject.subject_id}: [bold]{state}[/]  created {reply.subject.created_at.ToJsonString()}")
    table = Table()
    for column in ("holder", "counts", "error"):
        table.add_column(column)
    for h in reply.holders:
        table.add_row(h.holder, ", ".join(f"{c.category}={c.count}" for c in h.counts), h.error)
    console.print(table)


@cli.command("security-events")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def security_events(ctx: click.Context, limit: int) -> None:
    """The newest security events (auditor role)."""
    with _client(ctx) as client:
        events = _guard(lambda: client.security_events(limit))
    table = Table()
    for column in ("at", "event", "caller", "method", "network"):
        table.add_column(column)
    for e in events:
        table.add_row(e.created_at.ToJsonString(), e.event_type, e.caller, e.method, e.ip_prefix)
    console.print(table)


@cli.group()
def keys() -> None:
    """Retention and key-rotation settings (admin role)."""


@keys.command("settings")
@click.pass_context
def keys_settings(ctx: click.Context) -> None:
    """Retention periods and key-rotation state in force."""
    with _client(ctx) as client:
        reply = _guard(lambda: client.settings())
    table = Table(title="retention")
    table.add_column("category")
    table.add_column("kept for", justify="right")
    for r in reply.retention:
        table.add_row(r.category, f"{r.period.ToTimedelta()}")
    console.print(table)
    retired = ", ".join(
        f"{k.kek_id} (retired {k.retired_on}{'' if k.usable else ', past the backup window: destroy it'})" for k in reply.retired_keks
    )
    console.print(f"KEK {reply.kek_id or '(no id)'}; retired: {retired or 'none'}", highlight=False)
    console.print(
        f"backup window {reply.kek_backup_window_days} days; rewrap every {reply.kek_rewrap_interval.ToTimedelta()}; "
        f"erasures verified again after {reply.erasure_reverify_after.ToTimedelta()}; usage cells under {reply.stats_min_count} withheld",
        highlight=False,
    )


@keys.command("rewrap")
@click.pass_context
def keys_rewrap(ctx: click.Context) -> None:
    """After a KEK rotation: move every data key off retired KEKs now."""
    with _client(ctx) as client:
        moved = _guard(lambda: client.rewrap_keys())
    console.print(f"{moved} data key(s) moved to the current KEK")


@cli.group()
def ledger() -> None:
    """The erasure ledger and the access log."""


@ledger.command("verify")
@click.option(
    "--checkpoints",
    "checkpoint_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Verify offline, without the mesh: the folder of signed checkpoints (the local sink, or a copy of the S3 prefix).",
)
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file with a signing key's public key (PEM, or base64 of the 32 raw bytes, one a line): current and retired.",
)
@click.option(
    "--database-url",
    envvar="LIKENESS_AUDIT_DATABASE_URL",
    default="",
    help="With --checkpoints: also check the chains, read from privacy's tables (read-only access suffices).",
)
@click.option("--access-retention-days", default=365, show_default=True, type=click.IntRange(1), help="The access log's retention.")
@click.option("--json", "as_json", is_flag=True, help="Offline mode: print the report as JSON.")
@click.pass_context
def ledger_verify(
    ctx: click.Context,
    checkpoint_dir: Path | None,
    public_keys: tuple[Path, ...],
    database_url: str,
    access_retention_days: int,
    as_json: bool,
) -> None:
    """Check the hash chains; exits 1 when a link is broken.

    Without --checkpoints, privacy checks them (VerifyLedger over gRPC). With --checkpoints and --public-key,
    this machine checks every checkpoint's signature itself, and with --database-url the chains against them.
    """
    if checkpoint_dir is None:
        if public_keys or database_url:
            _fail("--public-key and --database-url verify offline: give --checkpoints DIR too")
        with _client(ctx) as client:
            reply = _guard(lambda: client.verify_ledger())
        if reply.ok:
            console.print(f"[green]ok[/]: {reply.erasure_entries} erasure entries, {reply.access_entries} access entries")
        else:
            console.print(f"[red]broken[/]: {reply.problem}")
            sys.exit(1)
        return
    _verify_offline(checkpoint_dir, public_keys, database_url, access_retention_days, as_json)


@ledger.command("public-key")
@click.argument("seed_file", type=click.File("r"))
def ledger_public_key(seed_file: Any) -> None:
    """The public key and key id of a ledger signing key (SEED_FILE: base64 of the 32-byte seed; - for stdin).

    What to list in LIKENESS_LEDGER_RETIRED_PUBLIC_KEYS when rotating it away, and to give an auditor.
    """
    from likeness_client import ledger as audit

    try:
        public = audit.public_of_seed(seed_file.read())
    except ValueError as exc:
        _fail(str(exc))
        return
    click.echo(f"{audit.public_text(public)}  # key id {audit.key_id(public)}")


def _verify_offline(checkpoint_dir: Path, public_keys: tuple[Path, ...], database_url: str, retention_days: int, as_json: bool) -> None:
    from datetime import timedelta

    from likeness_client import ledger as audit

    if not public_keys:
        _fail("--checkpoints needs --public-key: the public keys that may have signed them (current and retired)")
    try:
        keys = audit.load_public_keys(public_keys)
    except (audit.KeyFileError, ValueError) as exc:
        _fail(f"public key: {exc}")
        return
    report = audit.Report()
    audit.verify_checkpoints(checkpoint_dir, keys, report)
    if database_url:
        try:
            chains = audit.chains_from_database(database_url)
        except Exception as exc:  # the driver's errors are many; the auditor needs the message
            _fail(f"reading the chains: {type(exc).__name__}: {exc}")
            return
        audit.verify_chains(chains, report, timedelta(days=retention_days))
    newest = report.checkpoints[-1] if report.checkpoints else None
    if as_json:
        out = {
            "ok": report.ok,
            "checkpoints": len(report.checkpoints),
            "key_ids": sorted({c.key_id for c in report.checkpoints}),
            "newest": {"name": newest.name, "at": newest.at.isoformat(), "heads": newest.heads} if newest else None,
            "entries": report.entries,
            "problems": report.problems,
        }
        click.echo(json.dumps(out, sort_keys=True))
    elif report.ok:
        what = f"{len(report.checkpoints)} checkpoints signed by {', '.join(sorted({c.key_id for c in report.checkpoints}))}"
        if report.entries:
            what += f"; {report.entries['erasure_ledger']} erasure entries, {report.entries['access_log']} access entries reach them"
        console.print(f"[green]ok[/]: {what}", highlight=False)
    else:
        for problem in report.problems:
            console.print(f"[red]broken[/]: {problem}", highlight=False)
    if not report.ok:
        sys.exit(1)


# --- usage statistics ----------------------------------------------------------------------------


@cli.command("stats")
@click.option("--from", "from_day", default="", help="First UTC day, YYYY-MM-DD (default: 30 days before --to).")
@click.option("--to", "to_day", default="", help="Last UTC day (default and at most: yesterday).")
@click.option("--by", "group_by", multiple=True, help="Group by: day, interface, operation, spec_id, country, outcome, app_version.")
@click.option("--where", "filters", multiple=True, metavar="DIM=VALUE", help="Only cells with this value, e.g. --where country=JP.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def stats(ctx: click.Context, from_day: str, to_day: str, group_by: tuple[str, ...], filters: tuple[str, ...], as_json: bool) -> None:
    """Daily usage aggregates (auditor or admin role); counts under the threshold are withheld."""
    wanted: dict[str, str] = {}
    for item in filters:
        name, sep, value = item.partition("=")
        if not sep:
            _fail(f"--where takes DIM=VALUE, not {item!r}")
        wanted[name] = value
    with _client(ctx) as client:
        reply = _guard(lambda: client.usage_stats(from_day, to_day, list(group_by), wanted))
    cells = [{**dict(c.dimensions), "count": c.count} for c in reply.cells]
    if as_json:
        click.echo(json.dumps({"from_day": reply.from_day, "to_day": reply.to_day, "min_count": reply.min_count, "cells": cells}))
        return
    names = list(group_by) or ["day", "interface", "operation", "spec_id", "country", "outcome", "app_version"]
    table = Table(title=f"usage {reply.from_day} .. {reply.to_day} (cells under {reply.min_count} withheld)")
    for name in (*names, "count"):
        table.add_column(name, justify="right" if name == "count" else "left")
    for cell in cells:
        table.add_row(*(str(cell.get(n, "")) for n in (*names, "count")))
    console.print(table)


# --- a person's rights: inquiries and notices ------------------------------------------------------


@cli.group()
def inquiries() -> None:
    """Complaints and inquiries people sent (support role); every read is in the access log."""


@inquiries.command("list")
@click.option("--answered", is_flag=True, help="Answered ones instead of open ones.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def inquiries_list(ctx: click.Context, answered: bool, limit: int, as_json: bool) -> None:
    """Open (or answered) inquiries, oldest first."""
    with _client(ctx) as client:
        found = _guard(lambda: client.list_inquiries(answered, limit), "support")
    for i in found:
        if as_json:
            item = {
                "inquiry_id": i.inquiry_id,
                "subject_id": i.subject_id,
                "topic": i.topic,
                "message": i.message,
                "answer": i.answer,
                "created_at": i.created_at.ToJsonString(),
            }
            click.echo(json.dumps(item))
        else:
            console.print(f"[bold]{i.inquiry_id}[/] {i.topic} {i.created_at.ToJsonString()} subject {i.subject_id}", highlight=False)
            console.print(f"  {i.message}", highlight=False, markup=False)
            if i.answer:
                console.print(f"  -> {i.answer}", highlight=False, markup=False)
    if not as_json:
        console.print(f"{len(found)} inquiries")


@inquiries.command("answer")
@click.argument("inquiry_id")
@click.argument("answer")
@click.pass_context
def inquiries_answer(ctx: click.Context, inquiry_id: str, answer: str) -> None:
    """Answer INQUIRY_ID; the person sees ANSWER in the app."""
    with _client(ctx) as client:
        done = _guard(lambda: client.answer_inquiry(inquiry_id, answer), "support")
    console.print(f"answered {done.inquiry_id} at {done.answered_at.ToJsonString()}", highlight=False)


@cli.group()
def notices() -> None:
    """Notices to the people a security incident or a policy change concerns (admin role)."""


@notices.command("publish")
@click.option("--kind", type=click.Choice(["security-incident", "policy-change"]), required=True)
@click.option("--title", required=True)
@click.option("--body", required=True)
@click.option("--policy-version", default="", help="Policy change: the version that takes effect.")
@click.option("--effective", default="", help="Policy change: when it takes effect (ISO date, at least 30 days ahead).")
@click.option("--subject", "subjects", multiple=True, help="An affected subject id (repeat); none: everyone.")
@click.pass_context
def notices_publish(
    ctx: click.Context, kind: str, title: str, body: str, policy_version: str, effective: str, subjects: tuple[str, ...]
) -> None:
    """Publish a notice: in-app for its subjects, by push and email where they can be reached."""
    if kind == "security-incident" and (policy_version or effective):
        _fail("--policy-version and --effective are for --kind policy-change only; an incident notice has neither")
    if kind == "policy-change" and subjects:
        _fail("a policy change is announced to everyone: leave out --subject")
    request = rights_pb2.PublishNoticeRequest(
        kind=rights_pb2.NOTICE_KIND_POLICY_CHANGE if kind == "policy-change" else rights_pb2.NOTICE_KIND_SECURITY_INCIDENT,
        title=title,
        body=body,
        policy_version=policy_version,
        subject_ids=list(subjects),
    )
    if effective:
        try:
            when = datetime.fromisoformat(effective)
        except ValueError:
            _fail(f"--effective {effective!r} is not an ISO date")
        request.effective_at.FromDatetime((when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC))
    with _client(ctx) as client:
        done = _guard(lambda: client.publish_notice(request), "admin")
    console.print(
        f"notice {done.notice.notice_id}: {done.recipients} subjects, {done.push_sent} pushed, {done.email_sent} emailed,"
        f" {done.sms_sent} texted, {done.failed} failed",
        highlight=False,
    )
    untold = len(set(subjects)) - done.recipients if subjects else 0
    if untold > 0:
        errors.print(
            f"[yellow]warning:[/yellow] {untold} of the {len(set(subjects))} subjects given are not active subjects"
            " (erased, being erased, or unknown): they were not told",
            highlight=False,
        )


# --- templates ---------------------------------------------------------------------------------


@cli.group()
def templates() -> None:
    """Portrait template materials."""


@templates.command("list")
@click.pass_context
def templates_list(ctx: click.Context) -> None:
    with _client(ctx) as client:
        found = _guard(lambda: client.list_templates())
    table = Table(title=f"{len(found)} template(s)")
    for column in ("id", "name", "style", "faces", "size"):
        table.add_column(column)
    for t in found:
        table.add_row(t.template_id, t.name, t.style, str(t.face_count), f"{t.width}x{t.height}")
    console.print(table)


@templates.command("add")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Display name.")
@click.option("--style", default="", help="Style label (e.g. business, wedding).")
@click.pass_context
def templates_add(ctx: click.Context, image: Path, name: str, style: str) -> None:
    """Register IMAGE (JPEG/PNG) as a portrait template."""
    with _client(ctx) as client:
        made = _guard(lambda: client.register_template(name, style, image.read_bytes()))
    console.print(f"template [bold]{made.template_id}[/] {made.name} ({made.face_count} face(s), {made.width}x{made.height})")


# --- outfits -----------------------------------------------------------------------------------


def _point(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give X,Y in image pixels, e.g. 512,180") from None
    return x, y


@cli.group()
def outfits() -> None:
    """Garment materials for ID-photo outfits."""


@outfits.command("list")
@click.pass_context
def outfits_list(ctx: click.Context) -> None:
    with _client(ctx) as client:
        found = _guard(lambda: client.list_outfits())
    table = Table(title=f"{len(found)} outfit(s)")
    for column in ("id", "name", "size"):
        table.add_column(column)
    for o in found:
        table.add_row(o.outfit_id, o.name, f"{o.width}x{o.height}")
    console.print(table)


@outfits.command("add")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Display name.")
@click.option("--neck", required=True, callback=_point, help="X,Y of the middle of the neck opening.")
@click.option("--left-shoulder", required=True, callback=_point, help="X,Y of the wearer's left shoulder joint (image right).")
@click.option("--right-shoulder", required=True, callback=_point, help="X,Y of the wearer's right shoulder joint (image left).")
@click.option("--description", default="", help="Where the material comes from, its licence.")
@click.pass_context
def outfits_add(
    ctx: click.Context,
    image: Path,
    name: str,
    neck: tuple[float, float],
    left_shoulder: tuple[float, float],
    right_shoulder: tuple[float, float],
    description: str,
) -> None:
    """Register IMAGE (an RGBA PNG) as a garment material with its anchor points."""
    with _client(ctx) as client:
        made = _guard(lambda: client.register_outfit(name, image.read_bytes(), neck, left_shoulder, right_shoulder, description))
    console.print(f"outfit [bold]{made.outfit_id}[/] {made.name} ({made.width}x{made.height})")


@cli.command("whoami")
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """The identity and addresses the tool would use."""
    try:
        identity, endpoints = ctx.obj.identity(), ctx.obj.endpoints()
    except ConfigError as exc:
        _fail(str(exc))
    roles = ", ".join(sorted(identity.roles)) or "none"
    console.print(f"identity {identity.name or '(none in certificate)'}  roles {roles}  cert {identity.cert}", highlight=False)
    for name in SERVICES:
        console.print(f"  {name:<10} {endpoints[name]}", highlight=False)


def main() -> None:
    cli(prog_name="likeness")


if __name__ == "__main__":
    main()
