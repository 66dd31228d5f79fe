"""A long loop shows a few lines, not one per step; without a terminal there is no bar."""

from pipelines.progress import StepProgress


def test_a_line_for_the_first_step_about_every_tenth_and_the_last(capsys):
    with StepProgress(95, "sft", lines=10) as progress:
        for done in range(1, 96):
            progress.advance(done, f"step {done}/95")
            if done == 50:
                progress.note("held-out loss 0.5")
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines == ["step 1/95", *[f"step {n}/95" for n in range(10, 60, 10)], "held-out loss 0.5",
                     *[f"step {n}/95" for n in range(60, 95, 10)], "step 95/95"]
    assert "sft" not in captured.err  # stderr is no terminal here: no bar


def test_a_short_run_shows_every_step(capsys):
    with StepProgress(3, "grpo", lines=30) as progress:
        for done in (1, 2, 3):
            progress.advance(done, f"step {done}/3")
    assert capsys.readouterr().out.splitlines() == ["step 1/3", "step 2/3", "step 3/3"]
