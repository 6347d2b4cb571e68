"""The main-job benchmark keeps what it made when asked, refuses a folder already in use, and
shows the machine's pace by the epochs the job trained."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_beyond  # noqa: E402
import bench_main_job  # noqa: E402


def test_main_job_kept_in_the_runs_folder_given(tmp_path, monkeypatch, capsys):
    seen = []

    def timed(cmds, env):  # each step's commands, without running them; the sweep leaves a history
        seen.append(env["KAKASHI_RUNS_DIR"])
        if len(seen) == 2:
            run = Path(env["KAKASHI_RUNS_DIR"]) / "smoke_mse"
            run.mkdir()
            (run / "history.json").write_text(json.dumps({"epochs": [{"seconds": s} for s in (2.0, 3.0, 7.0)]}))
        return 1.0

    monkeypatch.setattr(bench_main_job, "timed", timed)
    runs = tmp_path / "runs"
    assert bench_main_job.main(["--quick", "--runs", str(runs)]) == 0
    assert seen == [str(runs)] * 3 and runs.is_dir()          # every step wrote there, and it stays
    table = capsys.readouterr().out
    assert "total" in table
    pace = [line.split()[4:] for line in table.splitlines() if line.startswith("an epoch of smoke_mse")]
    assert pace == [["3", "2", "7", "3"]]                  # median, min, max seconds of its 3 epochs


def test_main_job_refuses_a_runs_folder_in_use(tmp_path, capsys):
    (tmp_path / "kept.txt").write_text("a run")
    with pytest.raises(SystemExit) as exit_:
        bench_main_job.main(["--quick", "--runs", str(tmp_path)])
    assert exit_.value.code == 2 and "must be a new or empty folder" in capsys.readouterr().err
    assert (tmp_path / "kept.txt").read_text() == "a run"
    with pytest.raises(SystemExit):                        # a file is no folder
        bench_main_job.main(["--quick", "--runs", str(tmp_path / "kept.txt")])


def test_beyond_table_on_the_validation_songs_takes_no_real_music(capsys):
    """`bench_beyond.py --split val` measures on the validation songs; the real songs are set beside
    the test songs only, so asking for both is an error naming them (after argparse's usage line)
    and exit 2, before any work."""
    with pytest.raises(SystemExit) as exit_:
        bench_beyond.main(["--split", "val", "--real"])
    out = capsys.readouterr()
    assert exit_.value.code == 2 and out.out == ""
    assert out.err.strip().splitlines()[-1].endswith("--real sets the real songs beside the test songs, "
                                                     "so it takes no --split val")


def test_beyond_table_counts_the_sampling_seeds_each_target_is_met_in(capsys):
    """`bench_beyond.py --seeds 0,1` draws each table twice and ends it with how many of the two
    draws meet each target; a seed that is no number, one given twice, or --seeds beside --seed
    is an error (exit 2) before any work."""
    bench_beyond.main(["--quick", "--draws", "1", "--seeds", "0,1"])
    out = capsys.readouterr().out
    assert "sampling seed 0" in out and "sampling seed 1" in out
    summary = out.split("in how many of the 2 sampling seeds (0,1) each target is met")[-1].splitlines()
    header, rows = summary[1].split(), {line.split()[0]: line.split()[1:] for line in summary[2:] if line.strip()}
    assert header[-3:] == ["drift", "every", "draw"] and set(rows) == {"procedural", "retrieval"}
    assert all(0 <= int(n) <= 2 for row in rows.values() for n in row[:-1])
    assert int(rows["procedural"][-1]) == sum(int(n) == 2 for n in rows["procedural"][:-1])
    for bad, why in ((["--seeds", "0,x"], "give whole numbers"), (["--seeds", "1,1"], "a seed given twice"),
                     (["--seed", "2", "--seeds", "0,1"], "not allowed with argument --seed")):
        with pytest.raises(SystemExit) as exit_:
            bench_beyond.main(bad)
        err = capsys.readouterr()
        assert exit_.value.code == 2 and err.out == "" and why in err.err.splitlines()[-1]


def test_beyond_table_holds_every_real_song_dancer_to_the_default_rule(shared_data, capsys):
    """`bench_beyond.py --real` ends with each dancer's verdict under kakashi.vetting's three
    limits, the embedded dataset's (one song's calm at most 15.7 s): `procedural`, its moves the
    same whatever the song, dances the real songs far from the training dancer (FID_g about 10
    against a limit of 4.2)."""
    bench_beyond.main(["--quick", "--real", "--draws", "1"])
    out = capsys.readouterr().out
    verdicts = out.split("== the default rule on the real songs")[1].splitlines()[2:]
    rows = {line.split()[0]: line.split()[1:] for line in verdicts if line.strip()}
    assert set(rows) == {"procedural", "retrieval"}
    fid_g, fid_g_limit, *_, song_limit, passes = rows["procedural"]
    assert float(fid_g) > 2 * float(fid_g_limit) and passes == "False"
    assert float(song_limit) == pytest.approx(15.67, abs=0.01)


def test_beyond_generation_settings_dance_a_copy_of_each_motion_vocab_run(tmp_path, capsys):
    """`bench_beyond.py --generation accent_width=0.05 --generation smooth=0.6` dances a copy of
    each motion_vocab run whose checkpoint has those settings and the same weights, under the
    run's name; the run itself is left as it was. A setting that is not one of
    kakashi.models.vocab.GENERATION, no number, or out of the model's range is one line and exit
    2, before any work."""
    import torch

    from kakashi import checkpoint
    from kakashi.fileio import write_json
    from kakashi.runs import PRETRAINED

    run = tmp_path / "runs" / "default"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(PRETRAINED.read_bytes())
    write_json(run / "config.json", checkpoint.read(PRETRAINED)["preset"])
    before = (run / "best.pt").read_bytes()
    copies = bench_beyond.with_settings({"default": run}, {"accent_width": 0.05, "smooth": 0.6}, tmp_path / "copies")
    copy, original = checkpoint.read(copies["default"] / "best.pt"), checkpoint.read(run / "best.pt")
    assert copies["default"].name == "default" and (run / "best.pt").read_bytes() == before
    assert (copy["model"]["accent_width"], copy["model"]["smooth"]) == (0.05, 0.6)
    assert (original["model"]["accent_width"], original["model"]["smooth"]) == (0.02, 0.8)
    settings = ("accent_width", "smooth")
    assert {k: v for k, v in copy["model"].items() if k not in settings} == \
        {k: v for k, v in original["model"].items() if k not in settings}
    assert all(torch.equal(copy["state_dict"][k], v) for k, v in original["state_dict"].items())
    for bad, why in ((["--generation", "foo=1"], "NAME=VALUE"), (["--generation", "smooth=x"], "not a number"),
                     (["--run", str(run), "--generation", "accent_width=0"], "accent_width must be > 0")):
        with pytest.raises(SystemExit) as exit_:
            bench_beyond.main(bad)
        err = capsys.readouterr()
        assert exit_.value.code == 2 and err.out == "" and why in err.err.splitlines()[-1]
