"""`kgqa index`: the retrieval index (BM25, dense, quotes, snapshot) and the learned second stage."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from kgqa.commands.common import JsonOpt, err, load_settings, out, print_json

index_app = typer.Typer(
    help="The retrieval index kept under $KGQA_HOME and the reranker learned from the graph.",
    no_args_is_help=True,
)


def _index_command(rebuild: bool, as_json: bool) -> None:
    from kgqa.wiring import build_driver, build_index_store

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        store = build_index_store(settings, driver)
        report = store.rebuild() if rebuild else store.update()
    if as_json:
        print_json(asdict(report))
    else:
        out.print(", ".join(f"{k}={v}" for k, v in asdict(report).items()))


@index_app.command("rebuild")
def index_rebuild(as_json: JsonOpt = False) -> None:
    """Rebuild the retrieval index from the graph's active clauses and chunks."""
    _index_command(True, as_json)


@index_app.command("update")
def index_update(as_json: JsonOpt = False) -> None:
    """Bring the index up to the graph version, embedding only new or changed texts."""
    _index_command(False, as_json)


def train_retrieval_model(
    settings,
    driver,
    store,
    *,
    pairs: Path | None = None,
    max_questions: int | None = None,
    seed: int = 0,
    quiet: bool = False,
):
    """Learn the reranker and answerability model on this graph's own questions.

    The questions come from ``pairs`` (a ``kgqa dataset build`` folder) or from a dataset built
    here and now with the default dataset config. The refusal threshold is kept from the model
    served so far (it is calibrated on real letters by ``bench/bench_retrieval.py --calibrate``).
    """
    from serving.retrieval import HybridRetriever, load_model, model_path
    from serving.retrieval.training import TrainConfig, questions_from_pairs, train, unanswerable_from_pairs

    store.update()
    if pairs is None:
        from training.datagen.source import GraphSource
        from training.dataset import DatasetBuilder
        from training.dataset_config import DatasetConfig

        work = Path(tempfile.mkdtemp(prefix="kgqa-retrieval-pairs-"))
        builder = DatasetBuilder.from_config(
            DatasetConfig.load(None), GraphSource(driver, settings.neo4j_database)
        )
        builder.build(work)
        pairs = work
    questions = questions_from_pairs(pairs)
    config = TrainConfig(seed=seed)
    if max_questions:
        config.max_questions = max_questions
    previous = load_model(settings.home, settings.retrieval.model_path)
    retriever = HybridRetriever(store, None, store.config)
    progress = None
    if not quiet:
        from tqdm import tqdm

        def progress(it):
            return tqdm(list(it), desc="questions", unit="q", file=err.file)

    _, report = train(
        retriever,
        questions,
        unanswerable_from_pairs(pairs),
        model_path(settings.home),
        config,
        previous=previous,
        progress=progress,
    )
    return report


@index_app.command("train")
def index_train(
    pairs: Annotated[
        Path | None,
        typer.Option(help="A `kgqa dataset build` folder (default: build one from the graph now)."),
    ] = None,
    max_questions: Annotated[int | None, typer.Option(help="Questions to learn from (default 2500).")] = None,
    seed: Annotated[int, typer.Option(help="Sampling and letter dressing seed.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Learn the reranker and the answerability model from the graph's own questions.

    Writes $KGQA_HOME/retrieval/model.json, which serving then prefers to the packaged model.
    """
    from kgqa.wiring import build_driver, build_index_store

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        store = build_index_store(settings, driver)
        report = train_retrieval_model(
            settings, driver, store, pairs=pairs, max_questions=max_questions, seed=seed, quiet=as_json
        )
    if as_json:
        print_json(asdict(report))
        return
    out.print(
        f"learned from {report.questions} questions ({report.letters} dressed as letters) in {report.seconds} s"
    )
    out.print(f"held out: {report.heldout}")
    out.print(f"reranker weights: {report.reranker_weights}")
    out.print(f"answerability weights: {report.answerability_weights}")
    err.print(f"model: {report.path}")


def _questions(path: Path) -> list[tuple[str, list[str]]]:
    """The ``question`` of each JSON line of ``path``, with its ``gold_clause_ids`` when it has
    them (the clauses the official answer cites); other fields are ignored."""
    import json

    from kgqa.errors import ConfigError

    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            gold = row.get("gold_clause_ids") or []
            if not isinstance(gold, list):
                raise TypeError("gold_clause_ids is not a list")
            out.append((str(row["question"]), [str(c) for c in gold]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}:{n}: not a JSON line with a question ({exc})") from exc
    return out


@index_app.command("calibrate")
def index_calibrate(
    answerable: Annotated[
        list[Path], typer.Option(help="JSONL of real questions the manuals answer (repeatable).")
    ],
    unanswerable: Annotated[
        list[Path], typer.Option(help="JSONL of real questions they do not answer (repeatable).")
    ],
    max_answerable_refused: Annotated[
        float, typer.Option(help="Refusal budget for answerable questions (the operating point).")
    ] = 0.05,
    plot: Annotated[Path | None, typer.Option(help="Write the refusal curve as a PNG here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Calibrate refusal on real questions: fit the answerability model, pick the threshold.

    Answerable lines that carry ``gold_clause_ids`` (the clauses the official answer cites) first
    tune the reranker's dense prior (how much of the dense order to keep), by leave-one-out.
    Updates $KGQA_HOME/retrieval/model.json (starting from the model served now).
    """

    from kgqa.wiring import build_driver, build_retriever
    from serving.retrieval import model_path
    from serving.retrieval.calibration import calibrate_model, gold_answer_sets, plot_curve

    settings = load_settings()
    yes = [q for p in answerable for q in _questions(p)]
    no = [q for p in unanswerable for q, _ in _questions(p)]
    with build_driver(settings, check=True) as driver:
        retriever = build_retriever(settings, driver)
        clauses = retriever.store.current().clauses
        prior, calibration = calibrate_model(
            retriever,
            [q for q, _ in yes] + no,
            [True] * len(yes) + [False] * len(no),
            [gold_answer_sets(gold, clauses) if gold else [] for _, gold in yes] + [[] for _ in no],
            max_answerable_refused=max_answerable_refused,
        )
    model = retriever.model
    target = model_path(settings.home)
    model.save(target)
    if plot:
        plot_curve(calibration, plot)
    report = {k: v for k, v in asdict(calibration).items() if k != "curve"} | {
        "path": str(target),
        "dense_prior": asdict(prior) if prior else None,
    }
    if as_json:
        print_json(report)
        return
    out.print(
        f"threshold {calibration.threshold}: refuses {calibration.answerable_refused:.1%} of "
        f"{calibration.answerable} answerable and {calibration.unanswerable_refused:.1%} of "
        f"{calibration.unanswerable} unanswerable questions (leave-one-out)"
    )
    if prior:
        out.print(
            f"dense prior {prior.value} on {prior.questions} questions with known answers "
            f"(leave-one-out MRR {prior.loo_mrr}; each value's MRR: {prior.mrr})"
        )
    err.print(f"model: {target}")
