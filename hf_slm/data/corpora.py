"""The seven speech corpora of the paper's Table 2: where each lives and how to turn it into a unit dataset.

``CORPORA`` maps a short name to a frozen ``Corpus``; ``get_corpus(name)`` looks one up and
``corpus_build_kwargs(corpus)`` gives the keyword arguments of ``hf_slm.data.build.build_unit_dataset``
(``dataset_scripts/build_units.py --corpus NAME`` uses it).

Test sets follow the paper (3.3): a corpus's own held-out split where it has one, else a seeded random 1 %
of ``train``; sTinyStories contributes nothing to the test set (``in_test=False``).

Hub ids, configs, split and column names were checked against the dataset cards / loading scripts on the
Hub (2024-2025 versions); what could not be confirmed is said next to the field. Three corpora have no
usable Hub copy (``hub_id=None``: LibriLight, SWC, the unlabelled VoxPopuli) and one is a loading-script
repository that ``datasets>=4`` refuses (TEDLIUM, ``script_only=True``): build those from a local folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEST_FRACTION = 0.01  # the paper's random 1 % held out where a corpus defines no test split


@dataclass(frozen=True)
class Corpus:
    """One corpus of Table 2.

    ``hub_id`` is the Hub dataset holding the corpus as the paper used it (``None`` where there is none);
    ``script_only`` marks a Hub repo that only has a loading script, which ``datasets>=4`` refuses to run.
    ``train_splits`` / ``test_splits`` are split names of that dataset (``test_splits`` empty: no held-out
    split, a seeded ``TEST_FRACTION`` of ``train`` becomes the test set unless ``in_test`` is False).
    Column names are those of the Hub dataset (for local-folder corpora, the ones the folder must have).
    ``hours`` is the paper's Table 2 figure, not the size of ``hub_id``.
    """

    name: str
    title: str
    hours: float
    hub_id: str | None
    config: str | None
    train_splits: tuple[str, ...]
    test_splits: tuple[str, ...]
    audio_column: str
    text_column: str | None
    speaker_column: str | None
    id_column: str | None
    license: str
    in_test: bool = True
    script_only: bool = False
    notes: str = ""

    @property
    def from_hub(self) -> bool:
        """Whether ``load_dataset(hub_id, config)`` can load the corpus with the installed ``datasets``."""
        return self.hub_id is not None and not self.script_only

    @property
    def splits(self) -> tuple[str, ...]:
        """Source splits to encode: the train splits, plus the held-out ones when the corpus is in the test set."""
        return self.train_splits + (self.test_splits if self.in_test else ())

    @property
    def test_fraction(self) -> float | None:
        """Share of ``train`` held out as ``test``: ``TEST_FRACTION`` without a held-out split, else None."""
        return TEST_FRACTION if self.in_test and not self.test_splits else None

    @property
    def keep_columns(self) -> tuple[str, ...]:
        """Source columns copied into the unit dataset (under their source names): text and speaker."""
        return tuple(c for c in (self.text_column, self.speaker_column) if c is not None)


CORPORA: dict[str, Corpus] = {
    c.name: c
    for c in (
        Corpus(
            name="librispeech", title="LibriSpeech", hours=960,
            hub_id="openslr/librispeech_asr", config="all",  # configs clean / other / all (card); parquet
            train_splits=("train.clean.100", "train.clean.360", "train.other.500"),
            test_splits=("test.clean", "test.other"),  # also validation.clean / validation.other, not used
            audio_column="audio", text_column="text", speaker_column="speaker_id",  # speaker_id: int64
            id_column="id",  # e.g. "103-1240-0000"; also file, chapter_id
            license="CC-BY-4.0",
            notes="The parquet conversion is on the Hub; that main no longer carries the old loading script "
                  "(removed in refs/pr/9) was not confirmed here.",
        ),
        Corpus(
            name="librilight", title="LibriLight", hours=53_000,
            hub_id=None, config=None,  # no canonical Hub copy (see notes)
            train_splits=("train",), test_splits=(),  # unlabelled, no held-out split: random 1 %
            audio_column="audio", text_column=None, speaker_column=None, id_column="id",
            license="LibriVox public-domain audio (license of the Libri-Light release not confirmed here)",
            notes="Download small/medium/large from facebookresearch/libri-light (577 / 5,193 / 51,934 h per "
                  "its data_preparation README), cut by VAD, and build a local folder. Hub copies found: "
                  "HugoLaurencon/libri_light (loading script, refused by datasets>=4) and "
                  "fixie-ai/libri_light_partial (incomplete); neither is used.",
        ),
        Corpus(
            name="swc", title="SWC (Spoken Wikipedia Corpora, English)", hours=1_000,
            hub_id=None, config=None,  # no Hub copy found; distributed by Universitaet Hamburg
            train_splits=("train",), test_splits=(),  # no defined held-out split: random 1 %
            audio_column="audio", text_column=None, speaker_column=None, id_column="id",
            license="not confirmed here (Spoken Wikipedia recordings are CC-BY-SA on Wikimedia Commons)",
            notes="English SWC was 287 h of audio in Koehn et al. (LREC 2016); Table 2's 1K h may count a later "
                  "release or all three languages (en/de/nl) - not resolved. Columns are those the local "
                  "folder must provide.",
        ),
        Corpus(
            name="tedlium", title="TED-LIUM (release 3)", hours=1_600,
            hub_id="LIUM/tedlium", config="release3",  # configs release1/2/3, release3-speaker-adaptation
            train_splits=("train",), test_splits=("test",),  # + validation; names seen for release1 in the
            # viewer and in tedlium.py, assumed identical for release3
            audio_column="audio", text_column="text", speaker_column="speaker_id",
            id_column="id",  # e.g. "PaulaScher_2008P-1003.35-1011.16-<o,f0,female>"; also gender, file
            license="CC-BY-NC-ND-3.0", script_only=True,
            notes="LIUM/tedlium is a loading script (tedlium.py): datasets>=4 refuses it, and its parquet "
                  "export (refs/convert/parquet) holds only a partial train split. Release 3 has 452 h of "
                  "transcribed talks, which does not match Table 2's 1.6K h (unresolved).",
        ),
        Corpus(
            name="peoples_speech", title="People's Speech", hours=7_000,
            hub_id="MLCommons/peoples_speech", config="clean",  # configs clean, clean_sa, dirty, dirty_sa,
            # microset, validation, test; "clean" chosen as its 1.50M train rows fit 7K h (the paper does not
            # name the subset)
            train_splits=("train",), test_splits=("test",),  # + validation
            audio_column="audio", text_column="text", speaker_column=None,  # columns: id, audio, duration_ms, text
            id_column="id",
            license="CC-BY / CC-BY-SA (2.0-4.0, per source recording)",
        ),
        Corpus(
            name="voxpopuli", title="VoxPopuli (English)", hours=24_000,
            hub_id=None, config=None,  # the unlabelled English set is not on the Hub (see notes)
            train_splits=("train",), test_splits=(),  # unlabelled, no held-out split: random 1 %
            audio_column="audio", text_column=None, speaker_column=None, id_column="id",
            license="CC0-1.0",  # as on the facebook/voxpopuli card (the unlabelled release not checked)
            notes="24K h is VoxPopuli's unlabelled English speech, downloaded with facebookresearch/voxpopuli's "
                  "scripts into a local folder. facebook/voxpopuli (config 'en': audio_id, audio, raw_text, "
                  "normalized_text, speaker_id, ...; train/validation/test) is only the ~543 h transcribed "
                  "subset, is a loading script refused by datasets>=4, and its parquet export is partial.",
        ),
        Corpus(
            name="stinystories", title="sTinyStories", hours=72_000,
            hub_id="slprl/sTinyStories", config=None,  # single "default" config; parquet
            train_splits=("train",), test_splits=(), in_test=False,  # the paper keeps it out of the test set
            audio_column="audio", text_column="text", speaker_column=None,  # one synthetic voice
            id_column=None,  # columns: audio, text, aligned_text, split_sentence - no id column
            license="MIT",
            notes="slprl/sTinyStories re-synthesises TinyStories with FastSpeech2 (LJ voice) and credits "
                  "Cuervo et al. 2024; the paper's own audio (fairseq S^2, LJSpeech-like voice) is not on "
                  "the Hub, so hours and tokens may differ from Table 2. No id column: ids are "
                  "<split>-<position>.",
        ),
    )
}


def get_corpus(name: str) -> Corpus:
    """The corpus called ``name`` (a key of ``CORPORA``); ValueError listing the known names otherwise."""
    try:
        return CORPORA[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(sorted(CORPORA))}") from None


def corpus_build_kwargs(corpus: Corpus | str, source: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``build_unit_dataset`` (bar ``tokenizer`` / ``output_dir``) for ``corpus``.

    ``source`` replaces the Hub id with a local folder (``save_to_disk`` folder or data folder with the
    corpus's split and column names); it is required where the corpus has no loadable Hub copy.
    ``overrides`` (``splits``, ``audio_column``, ``id_column``, ...) win over the registry.
    Raises ValueError for a corpus without a loadable source.
    """
    corpus = get_corpus(corpus) if isinstance(corpus, str) else corpus
    if source is None and not corpus.from_hub:
        raise ValueError(f"{corpus.name}: {_no_hub_reason(corpus)}; build it from a local folder: "
                         f"build_units.py FOLDER {_cli_options(corpus)} --tokenizer ... --output ...")
    kwargs: dict[str, Any] = {
        "source": corpus.hub_id if source is None else source,
        "config": corpus.config if source is None else None,
        "splits": list(corpus.splits),
        "audio_column": corpus.audio_column,
        "id_column": corpus.id_column,
        "keep_columns": list(corpus.keep_columns),
        "rename": {c: to for c, to in ((corpus.text_column, "text"), (corpus.speaker_column, "speaker")) if c},
        "split_map": {**dict.fromkeys(corpus.train_splits, "train"), **dict.fromkeys(corpus.test_splits, "test")},
        "test_fraction": corpus.test_fraction,
    }
    kwargs.update(overrides)
    return kwargs


def _no_hub_reason(corpus: Corpus) -> str:
    if corpus.hub_id is None:
        return "no Hub dataset holds it"
    return f"{corpus.hub_id} is a loading-script repo that datasets>=4 cannot load"


def _cli_options(corpus: Corpus) -> str:
    """The ``build_units.py`` options that reproduce the registry entry for a local folder."""
    opts = [f"--splits {' '.join(corpus.splits)}", f"--audio-column {corpus.audio_column}"]
    opts.append(f"--id-column {corpus.id_column}" if corpus.id_column is not None else "--no-id-column")
    if corpus.keep_columns:
        opts.append(f"--keep-columns {' '.join(corpus.keep_columns)}")
    if corpus.test_fraction:
        opts.append(f"--test-fraction {corpus.test_fraction}")
    return " ".join(opts)
