"""The corpus registry (Table 2) and ``build_units.py --corpus``: offline, nothing is downloaded."""

import runpy
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from hf_slm.data.corpora import CORPORA, TEST_FRACTION, Corpus, corpus_build_kwargs, get_corpus

TABLE_2_HOURS = {"librispeech": 960, "librilight": 53_000, "swc": 1_000, "tedlium": 1_600,
                 "peoples_speech": 7_000, "voxpopuli": 24_000, "stinystories": 72_000}
SCRIPT = Path(__file__).resolve().parents[1] / "dataset_scripts" / "build_units.py"


def test_the_seven_corpora_of_table_2_with_their_hours():
    assert {name: c.hours for name, c in CORPORA.items()} == TABLE_2_HOURS
    assert round(sum(c.hours for c in CORPORA.values()), -4) == 160_000  # Table 2's total, 160K h


def test_every_corpus_has_the_required_fields_and_unique_names():
    assert all(name == c.name for name, c in CORPORA.items())
    assert len({c.title for c in CORPORA.values()}) == len(CORPORA)
    hub_ids = [c.hub_id for c in CORPORA.values() if c.hub_id is not None]
    assert len(set(hub_ids)) == len(hub_ids)
    for c in CORPORA.values():
        assert c.title and c.license and c.audio_column and c.hours > 0, c.name
        assert c.train_splits and not set(c.train_splits) & set(c.test_splits), c.name
        assert c.hub_id is None or c.hub_id.count("/") == 1, c.name
        if c.hub_id is None or c.script_only:  # no usable Hub copy: the reason is written down
            assert c.notes and not c.from_hub, c.name
        for column in (c.text_column, c.speaker_column, c.id_column):
            assert column is None or (isinstance(column, str) and column), c.name
        if c.test_fraction is not None:  # build_unit_dataset carves the 1 % out of a split named "train"
            assert c.train_splits == ("train",) and c.test_fraction == TEST_FRACTION, c.name
    with pytest.raises(FrozenInstanceError):
        CORPORA["librispeech"].hours = 1  # type: ignore[misc]
    assert {f.name for f in fields(Corpus)} >= {"hub_id", "config", "train_splits", "test_splits", "audio_column",
                                                "text_column", "speaker_column", "license", "hours", "in_test"}


def test_held_out_split_or_seeded_one_percent():
    with_test = {n for n, c in CORPORA.items() if c.test_splits}
    assert with_test == {"librispeech", "tedlium", "peoples_speech"}
    assert get_corpus("librispeech").splits[-2:] == ("test.clean", "test.other")
    assert get_corpus("peoples_speech").test_fraction is None
    assert {n for n, c in CORPORA.items() if c.test_fraction == TEST_FRACTION} == {"librilight", "swc", "voxpopuli"}


def test_stinystories_is_not_in_the_test_set():
    st = get_corpus("stinystories")
    assert st.in_test is False and st.hub_id == "slprl/sTinyStories"
    assert st.splits == ("train",) and st.test_fraction is None  # neither a held-out split nor a 1 % split
    assert [n for n, c in CORPORA.items() if not c.in_test] == ["stinystories"]


def test_unknown_corpus_error_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown corpus 'nope'") as err:
        get_corpus("nope")
    assert all(name in str(err.value) for name in CORPORA)


def test_build_kwargs_from_the_registry_and_overrides():
    kw = corpus_build_kwargs("voxpopuli", source="/data/vp_en")
    assert kw == {"source": "/data/vp_en", "config": None, "splits": ["train"], "audio_column": "audio",
                  "id_column": "id", "keep_columns": [], "rename": {}, "split_map": {"train": "train"},
                  "test_fraction": 0.01}
    kw = corpus_build_kwargs(get_corpus("librispeech"), splits=["train.clean.100"], id_column="file")
    assert kw["source"] == "openslr/librispeech_asr" and kw["config"] == "all"
    assert kw["splits"] == ["train.clean.100"] and kw["id_column"] == "file"
    assert kw["keep_columns"] == ["text", "speaker_id"] and kw["test_fraction"] is None
    assert kw["rename"] == {"text": "text", "speaker_id": "speaker"}
    assert kw["split_map"] == {"train.clean.100": "train", "train.clean.360": "train", "train.other.500": "train",
                               "test.clean": "test", "test.other": "test"}


@pytest.mark.parametrize("name", ["librilight", "swc", "voxpopuli", "tedlium"])
def test_corpus_without_a_usable_hub_copy_asks_for_a_local_folder(name):
    with pytest.raises(ValueError, match="local folder") as err:
        corpus_build_kwargs(name)
    assert name in str(err.value) and "--splits train" in str(err.value)


def test_corpus_without_an_id_column_gets_positional_ids():
    kw = corpus_build_kwargs("stinystories")
    assert kw["id_column"] is None and kw["keep_columns"] == ["text"] and kw["test_fraction"] is None


@pytest.fixture()
def script(monkeypatch):
    """``main`` of build_units.py with the tokenizer and the builder replaced by recorders."""
    main = runpy.run_path(str(SCRIPT))["main"]
    calls: list[dict] = []

    class FakeTokenizer:
        @staticmethod
        def from_pretrained(path, revision=None, device=None, dtype=None):
            return f"tok:{path}"

    def fake_build(source, tokenizer, output_dir, **kwargs):
        calls.append({"source": source, "tokenizer": tokenizer, "output_dir": output_dir, **kwargs})
        return Path(output_dir)

    monkeypatch.setitem(main.__globals__, "SpeechTokenizer", FakeTokenizer)
    monkeypatch.setitem(main.__globals__, "build_unit_dataset", fake_build)
    return main, calls


def test_script_corpus_fills_source_and_columns(script, capsys):
    main, calls = script
    assert main(["--corpus", "peoples_speech", "--tokenizer", "t", "--output", "o"]) == 0
    (call,) = calls
    assert call["source"] == "MLCommons/peoples_speech" and call["config"] == "clean"
    assert call["splits"] == ["train", "test"] and call["audio_column"] == "audio" and call["id_column"] == "id"
    assert call["keep_columns"] == ["text"] and call["test_fraction"] is None
    assert call["tokenizer"] == "tok:t" and call["tokenizer_id"] == "t"
    assert "wrote o" in capsys.readouterr().out


def test_script_explicit_options_override_the_corpus(script):
    main, calls = script
    assert main(["--corpus", "librispeech", "--tokenizer", "t", "--output", "o", "--splits", "test.clean",
                 "--keep-columns", "--test-fraction", "0.05"]) == 0
    assert calls[0]["source"] == "openslr/librispeech_asr" and calls[0]["splits"] == ["test.clean"]
    assert calls[0]["keep_columns"] == [] and calls[0]["test_fraction"] == 0.05
    assert calls[0]["id_column"] == "id" and "speaker_column" not in calls[0]  # not a build argument


def test_script_source_alone_keeps_the_builder_defaults(script):
    main, calls = script
    assert main(["some/audio", "--tokenizer", "t", "--output", "o"]) == 0
    assert calls[0]["source"] == "some/audio"
    assert not {"config", "splits", "audio_column", "id_column", "keep_columns", "test_fraction"} & set(calls[0])


def test_script_corpus_and_source_are_mutually_exclusive(script, capsys):
    main, calls = script
    with pytest.raises(SystemExit) as exit_info:
        main(["some/audio", "--corpus", "librispeech", "--tokenizer", "t", "--output", "o"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--tokenizer", "t", "--output", "o"])  # one of the two is required
    assert "one of the arguments source --corpus is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--corpus", "nope", "--tokenizer", "t", "--output", "o"])
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert calls == []


def test_script_corpus_without_hub_copy_fails_cleanly(script, capsys):
    main, calls = script
    assert main(["--corpus", "librilight", "--tokenizer", "t", "--output", "o"]) == 2
    assert "local folder" in capsys.readouterr().err and calls == []
