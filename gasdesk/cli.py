"""The ``gasdesk`` command line. Every command calls the same service functions as the web app."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from gasdesk.errors import GasdeskError

app = typer.Typer(help="gasdesk 热力燃气智能客服平台", no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema", no_args_is_help=True)
user_app = typer.Typer(help="Staff users", no_args_is_help=True)
import_app = typer.Typer(help="Bulk imports", no_args_is_help=True)
bot_app = typer.Typer(help="The resident bot", no_args_is_help=True)
analytics_app = typer.Typer(help="Report facts and roll-ups", no_args_is_help=True)
kb_app = typer.Typer(help="The knowledge base", no_args_is_help=True)
corrections_app = typer.Typer(help="Agents' corrections of the bot's intents", no_args_is_help=True)
keys_app = typer.Typer(help="The personal-data encryption keys (GASDESK_DATA_KEYS)", no_args_is_help=True)
bot_app.add_typer(corrections_app, name="corrections")
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(import_app, name="import")
app.add_typer(bot_app, name="bot")
app.add_typer(analytics_app, name="analytics")
app.add_typer(kb_app, name="kb")
app.add_typer(keys_app, name="keys")


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"错误: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.callback()
def check_settings() -> None:
    """Runs before every command: production refuses missing or published secrets, as the web app does."""
    from pydantic import ValidationError

    from gasdesk.config import InsecureConfiguration, get_settings

    try:
        get_settings().check_production_safety()
    except InsecureConfiguration as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(f"配置有误: {exc}")


def run(coro):  # noqa: ANN001, ANN201 - thin wrapper
    """Run a coroutine, turning domain errors into a clear message and a non-zero exit."""
    import gasdesk.all_models  # noqa: F401 - every mapper is known before the first flush (the app and worker import it too)
    from gasdesk.db import dispose_engine

    async def main():  # noqa: ANN202
        try:
            return await coro
        finally:
            await dispose_engine()

    try:
        return asyncio.run(main())
    except GasdeskError as exc:
        fail(exc.message)


def configure_process_logging() -> None:
    """The same log set-up as ``serve`` (PII filter; JSON lines with GASDESK_LOG_FORMAT=json) for the
    long-running processes that are not uvicorn."""
    import logging.config

    from gasdesk.config import get_settings
    from gasdesk.web.access_log import log_config

    logging.config.dictConfig(log_config("INFO", get_settings().log_format))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (scale-out needs PostgreSQL + Redis)")] = 1,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (development)")] = False,
) -> None:
    """Serve the web app and API."""
    import uvicorn

    from gasdesk.config import get_settings

    settings = get_settings()  # production safety was checked by check_settings()
    if workers > 1 and settings.is_sqlite:
        fail("多进程模式需要 PostgreSQL（GASDESK_DATABASE_URL）和 Redis（GASDESK_REDIS_URL）")
    from gasdesk.web.access_log import log_config

    uvicorn.run(
        "gasdesk.web.app:create_app", factory=True, host=host or settings.host, port=port or settings.port,
        workers=workers, reload=reload, log_level="info",
        # uvicorn's access log prints query strings; the app writes its own without personal data,
        # and every log line passes through the PII filter.
        access_log=False, log_config=log_config("INFO", settings.log_format),
        # Chat frames are small: compressing each costs more CPU than it saves on a LAN.
        ws_per_message_deflate=False,
        # Frames are at most 16,000 characters (docs/chat-protocol.md); uvicorn's default is 16 MB.
        ws_max_size=64 * 1024,
    )


@app.command()
def worker(poll: Annotated[float, typer.Option(help="Seconds between polls when idle")] = 5.0) -> None:
    """Run background jobs and periodic tasks (SLA scan, follow-ups, webhooks) in this process.
    Set GASDESK_RUN_WORKER=false on the web processes when you run dedicated workers."""
    from gasdesk.worker import run_worker

    configure_process_logging()
    typer.echo("后台任务进程已启动（Ctrl-C 退出）")
    try:
        run(run_worker(poll_s=poll))
    except KeyboardInterrupt:
        pass


@app.command()
def hotline() -> None:
    """Run the hotline's media back-ends (FreeSWITCH listener, embedded SIP) in this process. Calls join the
    same database and queues as the web processes; run one hotline process."""
    from gasdesk.config import get_settings
    from gasdesk.telephony.runtime import serve_hotline

    settings = get_settings()
    if not settings.freeswitch_enabled and not settings.sip_enabled:
        fail("未启用任何热线接入：设置 GASDESK_FREESWITCH_ENABLED=true 或 GASDESK_SIP_ENABLED=true")
    configure_process_logging()
    typer.echo("热线进程已启动（Ctrl-C 退出）")
    try:
        run(serve_hotline(settings))
    except KeyboardInterrupt:
        pass


@app.command()
def cluster(
    port: Annotated[int, typer.Option(help="nginx (the URL to open); the web processes take the next ports")] = 8000,
    apps: Annotated[int, typer.Option(help="gasdesk serve processes behind nginx")] = 2,
    data_dir: Annotated[Path, typer.Option(help="kept between runs: the PostgreSQL cluster")] = Path("var/cluster"),
) -> None:
    """Development: the scale-out set-up on this machine (make run-cluster) — PostgreSQL, Redis, N web
    processes, one more for the report routes and a worker behind nginx, all on loopback; Ctrl-C stops
    everything."""
    import shutil
    import signal
    import time

    from gasdesk.system.cluster import ClusterError, LocalCluster

    if apps < 1:
        fail("--apps 至少为 1")
    data_dir = data_dir.resolve()
    run_dir = data_dir / "run"  # sockets, logs, nginx's generated configuration: new each run
    shutil.rmtree(run_dir, ignore_errors=True)
    local = LocalCluster(run_dir, data_dir=data_dir / "pgdata", http_port=port,
                         app_ports=[port + 1 + i for i in range(apps)], reports_port=port + 1 + apps,
                         seed_demo=True, fast_database=False)

    def terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)  # also when started in the background, where SIGINT is ignored
    typer.echo(f"启动集群：PostgreSQL、Redis、{apps} 个 Web 进程、1 个报表 Web 进程、1 个后台任务进程、nginx"
               f"（日志: {run_dir}）…")
    try:
        local.start()
    except ClusterError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("已停止")
        return
    typer.echo(f"gasdesk 集群已启动: {local.url}  （演示账号见首页；Ctrl-C 停止全部进程）")
    typer.echo("  " + "，".join(f"{a.name} → {a.base}" for a in local.web_processes()) + f"，Redis → {local.redis.url}")
    reported: set[str] = set()
    try:
        while True:
            time.sleep(1)
            for child in local.children():
                if not child.alive() and child.name not in reported:
                    reported.add(child.name)
                    typer.secho(f"{child.name} 已退出（日志 {child.log_path}）；其余进程继续运行", fg=typer.colors.YELLOW,
                                err=True)
    except KeyboardInterrupt:
        typer.echo("\n正在停止集群…")
    finally:
        local.stop()
    typer.echo("集群已停止")


@app.command()
def backup(dest: Annotated[Path, typer.Argument(help="New (or empty) folder to write the backup into")]) -> None:
    """Back up the database (SQLite: online backup API, consistent while the app runs; PostgreSQL: pg_dump -Fc)
    and the upload folder into DEST, with a manifest of checksums. The keys are not in it: keep them apart.
    Exit 2 for a bad DEST, 1 when a tool fails."""
    from gasdesk.config import get_settings
    from gasdesk.system.backup import BackupError
    from gasdesk.system.backup import backup as make_backup

    try:
        report = run(make_backup(dest, get_settings()))
    except BackupError as exc:
        fail(exc.message, exc.code)
    sizes = "，".join(f"{name} {size / 1_048_576:.1f} MB" for name, size in report.files.items())
    typer.echo(f"已备份到 {report.folder}（{report.backend}，版本 {report.revision}）: {sizes}")


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="Backup folder written by `gasdesk backup`")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite a database or upload folder that holds data")] = False,
    ignore_key_check: Annotated[bool, typer.Option("--ignore-key-check",
                                                   help="Restore a backup made under another GASDESK_DATA_KEY")] = False,
) -> None:
    """Restore a backup into the configured database and upload folder (stop the app first). Refuses a target
    that holds data unless --force. Exit 2: SRC missing, damaged or from another backend; 3: target not empty;
    4: made under another GASDESK_DATA_KEY; 1: a tool failed."""
    from gasdesk.config import get_settings
    from gasdesk.system.backup import BackupError
    from gasdesk.system.backup import restore as restore_backup

    try:
        manifest = run(restore_backup(src, get_settings(), force=force, ignore_key_check=ignore_key_check))
    except BackupError as exc:
        fail(exc.message, exc.code)
    typer.echo(f"已从 {src} 恢复（{manifest['backend']}，{manifest['created_at']} 的备份，版本 {manifest['revision']}）；"
               "如代码更新过，请运行 gasdesk db upgrade")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply database migrations (Alembic)."""
    from gasdesk.migrations.runner import upgrade

    upgrade(revision=revision)
    typer.echo("数据库已升级到最新版本")


@app.command("seed-demo")
def seed_demo(
    customers: Annotated[int, typer.Option(help="Number of demo customers")] = 2400,
    force: Annotated[bool, typer.Option(help="Seed even if demo data exists")] = False,
) -> None:
    """Create a believable demo utility (once): districts, customers, branches, users."""
    from gasdesk.seed.demo import seed_demo_data

    result = run(seed_demo_data(customers=customers, force=force))
    if result is None:
        typer.echo("演示数据已存在，跳过（使用 --force 重新生成）")
        return
    typer.echo(f"演示数据已生成: {result.customers} 位客户, {result.accounts} 个户号, {result.branches} 个营业网点")
    typer.echo("演示账号（用户名 / 密码）:")
    for username, password, label in result.logins:
        typer.echo(f"  {label:<8} {username:<12} {password}")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="admin | supervisor | agent | dispatcher | field_crew")],
    display_name: Annotated[str | None, typer.Option(help="Name shown in the UI")] = None,
    password: Annotated[str | None, typer.Option(help="Password (prompted if omitted; or GASDESK_NEW_PASSWORD)")] = None,
) -> None:
    """Create a staff user."""
    from gasdesk.audit.service import Actor
    from gasdesk.auth.service import do_create_user
    from gasdesk.db import transaction

    secret = password or os.environ.get("GASDESK_NEW_PASSWORD")
    if not secret:
        if not sys.stdin.isatty():
            fail("请用 --password 或环境变量 GASDESK_NEW_PASSWORD 提供密码")
        secret = getpass.getpass("密码: ")
        if secret != getpass.getpass("再次输入密码: "):
            fail("两次输入的密码不一致")

    async def create():  # noqa: ANN202
        async with transaction() as session:
            user = await do_create_user(session, Actor.system("cli"), username=username, password=secret,
                                        role=role, display_name=display_name)
            return user.username, user.role

    name, role_value = run(create())
    typer.echo(f"已创建用户 {name}（{role_value}）")


@import_app.command("customers")
def import_customers_cmd(
    file: Annotated[Path, typer.Argument(help="CSV file (UTF-8 or GBK)")],
    errors: Annotated[Path | None, typer.Option(help="Where to write rejected rows")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per transaction")] = 2000,
) -> None:
    """Import customers and accounts from CSV; re-running updates instead of duplicating."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from gasdesk.audit.service import Actor
    from gasdesk.customers.importer import import_customers

    if batch_size < 1:
        fail("--batch-size 必须大于 0")
    with Progress(TextColumn("导入客户"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as progress:
        task = progress.add_task("import", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = run(import_customers(file, Actor.system("cli-import"), error_path=errors, batch_size=batch_size,
                                      on_progress=on_progress))
    typer.echo(
        f"共 {report.total} 行：新建客户 {report.created_customers}，更新客户 {report.updated_customers}，"
        f"新建户号 {report.created_accounts}，更新户号 {report.updated_accounts}，未变化 {report.unchanged}，"
        f"拒绝 {report.rejected}（用时 {report.seconds:.1f} 秒）"
    )
    if report.error_file:
        typer.secho(f"有 {report.rejected} 行被拒绝，行号及原因已写入: {report.error_file}", fg=typer.colors.YELLOW)
        raise typer.Exit(3)  # distinct from hard failures (1): the good rows were imported


@import_app.command("kb")
def import_kb_cmd(file: Annotated[Path, typer.Argument(help="xlsx or CSV (UTF-8/GBK): 标题,问法,答案,分类,标签,渠道,…")]) -> None:
    """Import knowledge-base articles; re-running updates changed ones (a new version each)."""
    from gasdesk.audit.service import Actor
    from gasdesk.kb.importer import import_articles

    if not file.exists():
        fail(f"文件不存在: {file}")
    report = run(import_articles(file, Actor.system("cli-import")))
    typer.echo(f"新建 {report.created}，更新 {report.updated}，未变化 {report.unchanged}，拒绝 {len(report.rejected)}")
    for row in report.rejected[:50]:
        typer.echo(f"  第 {row.row} 行（{row.title}）: {row.reason}")
    if report.rejected:
        raise typer.Exit(3)


@bot_app.command("eval")
def bot_eval(
    file: Annotated[Path, typer.Argument(help='JSONL lines {"text", "intent", "slots"?} or dialogues {"turns": [...]}')],
    errors: Annotated[int, typer.Option(help="Dialogue files: list this many wrong turns")] = 0,
) -> None:
    """Accuracy, per-intent precision/recall, slot accuracy, confusions and latency, with a TF-IDF+LR baseline;
    for a file of multi-turn dialogues, turn accuracy in context (bot/nlu/dialogue_eval.py)."""
    from gasdesk.bot.nlu.dialogue_eval import is_dialogue_file, run_dialogue_eval_cli
    from gasdesk.bot.nlu.evaluate import run_eval_cli

    dialogues = file.is_file() and is_dialogue_file(file)
    code = run_dialogue_eval_cli(str(file), errors) if dialogues else run_eval_cli(str(file))
    if code:
        raise typer.Exit(code)


@kb_app.command("eval")
def kb_eval(file: Annotated[Path, typer.Argument(help='JSONL lines {"q", "title" | null}, or a .py with PARAPHRASES/OFF_TOPIC')],
            articles: Annotated[Path | None, typer.Option(help="knowledge file (JSONL); default: the demo knowledge base")] = None) -> None:
    """Top-1/top-3 right article, right answers above the bot's threshold, refusals of unanswerable questions."""
    from gasdesk.kb.evaluate import run_eval_cli

    code = run_eval_cli(str(file), str(articles) if articles else None)
    if code:
        raise typer.Exit(code)


@bot_app.command("retrain")
def bot_retrain(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Compare only; deploy nothing")] = False,
    heldout: Annotated[list[Path] | None, typer.Option(help="Held-out set (repeatable); default: every "
                                                            "tests/bot/nlu/heldout*.jsonl")] = None,
) -> None:
    """Train a candidate on the shipped data plus approved corrections; deploy it only if, on every held-out
    set, it gets at most one line in 200 fewer right than the deployed model and its gas_leak recall is 1.00.
    Exit 1 otherwise (the deployed model is untouched). Running processes pick the new model up within
    GASDESK_NLU_MODEL_CHECK_S."""
    from gasdesk.audit.service import Actor
    from gasdesk.bot.nlu import retrain
    from gasdesk.bot.nlu.evaluate import EvalFileError
    from gasdesk.db import transaction
    from gasdesk.intent_corrections.retraining import retrain_model

    sets = list(heldout) if heldout else retrain.heldout_sets()
    if not sets:
        fail(f"没有评测集 / no held-out sets ({retrain.HELDOUT_GLOB})：未部署 not deployed")

    async def go():  # noqa: ANN202
        async with transaction() as session:
            return await retrain_model(session, Actor.system("cli"), sets=sets, dry_run=dry_run)

    typer.echo("训练候选模型 / training the candidate (shipped data + approved corrections)…")
    try:
        outcome = run(go())
    except EvalFileError as exc:
        fail(f"评测集有误 / bad held-out set: {exc}")
    typer.echo(f"已采纳的纠正 approved corrections: {len(outcome.examples)}；评测集 held-out sets: {len(sets)}")
    typer.echo(retrain.format_verdict(outcome.verdict))
    if not outcome.verdict.acceptable:
        fail("候选模型不如现用模型（或漏识别燃气泄漏），未部署，现用模型不变 / "
             "candidate refused: worse than the deployed model or misses a gas leak; nothing deployed")
    if dry_run:
        typer.echo("--dry-run：候选模型可以部署，但本次未部署 / the candidate would pass; nothing deployed")
        return
    deployment = outcome.deployment
    assert deployment is not None
    typer.echo(f"已部署 deployed: {deployment.model_file}（{deployment.corrections} 条纠正 corrections）；"
               "各进程将在 GASDESK_NLU_MODEL_CHECK_S 秒内使用新模型 / running processes switch within "
               "GASDESK_NLU_MODEL_CHECK_S seconds")


@corrections_app.command("export")
def corrections_export(file: Annotated[Path, typer.Argument(help="JSONL file to write ('-' for standard output)")]) -> None:
    """Write the approved corrections as JSON lines {"text", "intent", "correction_id"} (phone/户号 masked)."""
    from gasdesk.db import transaction
    from gasdesk.intent_corrections.retraining import export_approved

    async def go(out) -> int:  # noqa: ANN001
        async with transaction() as session:
            return await export_approved(session, out)

    if str(file) == "-":
        count = run(go(sys.stdout))
    else:
        with file.open("w", encoding="utf-8") as out:
            count = run(go(out))
    typer.echo(f"已导出 {count} 条已采纳的纠正 / exported {count} approved corrections", err=str(file) == "-")


@analytics_app.command("backfill")
def analytics_backfill(days: Annotated[int, typer.Option(help="How far back (0: everything stored)")] = 0) -> None:
    """Write report facts for stored history (idempotent), then roll up every hour that has facts."""
    from datetime import timedelta

    from gasdesk.analytics.backfill import backfill
    from gasdesk.analytics.rollup import rebuild_all
    from gasdesk.clock import utcnow
    from gasdesk.db import transaction

    async def go() -> tuple[int, int]:
        since = utcnow() - timedelta(days=days) if days > 0 else None
        async with transaction() as session:
            new = await backfill(session, since)
        async with transaction() as session:
            hours = await rebuild_all(session)
        return new, hours

    new, hours = run(go())
    typer.echo(f"新增统计事实 {new} 条，重算 {hours} 个小时的汇总")


def main() -> None:
    app()


@keys_app.command("status")
def keys_status() -> None:
    """How many encrypted values each key holds, per table (legacy = written before key ids)."""
    from gasdesk.db import transaction
    from gasdesk.security.crypto import key_ring
    from gasdesk.security.rotation import key_usage

    async def go():  # noqa: ANN202
        async with transaction() as session:
            return await key_usage(session)

    ring = key_ring()
    usage = run(go())
    typer.echo(f"主密钥 primary key: {ring.primary}；可解密 readable: {', '.join(ring.keys)}")
    totals: dict[str, int] = {}
    for table_name, counts in usage.items():
        if counts:
            typer.echo(f"  {table_name}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
        for key_id, n in counts.items():
            totals[key_id] = totals.get(key_id, 0) + n
    typer.echo("合计 total: " + (", ".join(f"{k} {n}" for k, n in sorted(totals.items())) or "0"))
    missing = sorted(k for k in totals if k not in ring.keys)
    if missing:
        fail(f"有数据使用的密钥不在 GASDESK_DATA_KEYS 中 / values under keys the ring lacks: {', '.join(missing)}")


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(help="Rows per transaction")] = 500,
    max_batches: Annotated[int | None, typer.Option(help="Stop after this many batches (run again to go on)")] = None,
) -> None:
    """Re-encrypt every encrypted value under the primary key of GASDESK_DATA_KEYS, a batch per transaction,
    while the app runs. Resumable and idempotent: values already under the primary key are skipped.
    Runbook: docs/operations.md (every process must run the new ring first)."""
    from gasdesk.audit.service import Actor
    from gasdesk.security.crypto import KeyNotAvailable, key_ring
    from gasdesk.security.rotation import RotationReport, rotate_keys

    if batch_size < 1:
        fail("--batch-size 必须大于 0")
    ring = key_ring()
    typer.echo(f"用主密钥 {ring.primary} 重新加密 / re-encrypting under {ring.primary}…")

    def progress(table_name: str, report: RotationReport) -> None:
        typer.echo(f"  {table_name}: 已扫描 scanned {report.scanned}，已重新加密 re-encrypted {report.reencrypted}")

    try:
        report = run(rotate_keys(Actor.system("cli-keys"), batch_size=batch_size, max_batches=max_batches,
                                 on_progress=progress))
    except KeyNotAvailable as exc:
        fail(f"{exc}：把该密钥加回 GASDESK_DATA_KEYS 后再运行 / add that key back to the ring and run again")
    state = "完成 complete" if report.complete else "未完成，再次运行以继续 / stopped early, run again to go on"
    typer.echo(f"{state}: {report.batches} 批 batches，扫描 {report.scanned} 行 rows，"
               f"重新加密 {report.reencrypted} 个值 values")
