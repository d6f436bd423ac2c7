"""The README's and docs/'s complete code examples run as written, and say what they print.

Every ```python block in README.md and docs/*.md is either run here (found by the
heading it sits under) or starts with ``# fragment`` (an illustration that needs
the reader's own model, data or launcher). The command-line outputs and error
messages the pages quote are checked against the real thing, and every link
between the pages resolves.
"""

from __future__ import annotations

import builtins
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import plateau

ROOT = Path(__file__).parents[1]
PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
FRAGMENT = "# fragment"

# (page, heading) of every example a test below runs.
RUN = {
    "quickstart": ("README.md", "## Quickstart"),
    "torch": ("docs/torch.md", "# Coming from PyTorch"),
    "lightning": ("docs/torch.md", "## Lightning"),
    "torch_warmup": ("docs/torch.md", "## Warmup"),
    "torch_capturable": ("docs/torch.md", "## Capturable: a per-batch step with no host sync"),
    "core_base": ("docs/semantics.md", "## Base schedules"),
    "readme_torch_base": ("README.md", "### Over a torch scheduler"),
    "readme_keras_base": ("README.md", "### Over a Keras schedule"),
    "readme_optax_base": ("README.md", "### Over an optax schedule"),
    "keras": ("docs/keras.md", "# Keras 3"),
    "keras_base": ("docs/keras.md", "## Warmup and base schedules"),
    "optax": ("docs/optax.md", "# JAX / optax"),
    "optax_base": ("docs/optax.md", "## Warmup and base schedules"),
    "optax_checkpoint": ("docs/optax.md", "## Checkpointing at scale"),
    "optax_graph": ("docs/optax.md", "## In the graph: `reduce_on_plateau`"),
    "restore": ("docs/restore.md", "## PyTorch"),
    "optax_restore": ("docs/restore.md", "## JAX / optax"),
}
# The README's one example per framework is its docs page's, character for character.
README_COPIES = {
    "### PyTorch": "torch",
    "### PyTorch, per batch, compiled: `capturable=True`": "torch_capturable",
    "### Keras 3": "keras",
    "### JAX / optax": "optax",
}


def read(page: str) -> str:
    return (ROOT / page).read_text()


def lines_outside_code(text: str):
    """Yield (line, in_code) for each line; fence lines count as code."""
    fence = None
    for line in text.split("\n"):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = line[: len(line) - len(line.lstrip())]
            yield line, True
        elif fence is not None and stripped == "```":
            fence = None
            yield line, True
        else:
            yield line, fence is not None


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, list-item indentation removed."""
    blocks, current, lang, indent = [], None, "", 0
    for line in text.split("\n"):
        stripped = line.strip()
        if current is None and stripped.startswith("```"):
            current, lang, indent = [], stripped[3:], len(line) - len(line.lstrip())
        elif current is not None and stripped == "```":
            blocks.append((lang, "".join(f"{c[indent:]}\n" for c in current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def headings(text: str) -> list[str]:
    return [line for line, code in lines_outside_code(text) if not code and line.startswith("#")]


def section(page: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    out, inside = [], False
    for line, code in lines_outside_code(read(page)):
        if not code and line.startswith("#"):
            if line == heading:
                inside = True
                continue
            if inside and len(line) - len(line.lstrip("#")) <= level:
                break
        if inside:
            out.append(line)
    assert inside, f"no heading {heading!r} in {page}"
    return "\n".join(out)


def first_python_block(page: str, heading: str) -> str:
    blocks = [code for lang, code in code_blocks(section(page, heading)) if lang == "python"]
    assert blocks, f"no python block under {heading!r} in {page}"
    return blocks[0]


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def run(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# Which blocks run ------------------------------------------------------------------


def test_every_complete_python_example_is_run():
    run_here = {first_python_block(*where) for where in RUN.values()}
    for page in PAGES:
        for lang, code in code_blocks(read(page)):
            if lang == "python" and not code.startswith(FRAGMENT):
                assert code in run_here, f"{page}: a python block no test runs:\n{code}"


@pytest.mark.parametrize("heading", README_COPIES)
def test_readme_examples_are_the_docs_pages_examples(heading):
    assert first_python_block("README.md", heading) == first_python_block(
        *RUN[README_COPIES[heading]]
    )


# The examples ----------------------------------------------------------------------


def test_quickstart_prints_what_the_readme_says(tmp_path):
    out = run(first_python_block(*RUN["quickstart"]), tmp_path).splitlines()
    assert out[-2:] == ["0.70  lr=0.05  reduced", "0.69  lr=0.05  improved"]
    claim = re.search(
        r"The last lines print `(.*?)` then `(.*?)`", one_line(section(*RUN["quickstart"]))
    )
    assert claim and [c.replace("  ", " ") for c in claim.groups()] == [
        line.replace("  ", " ") for line in out[-2:]
    ]


def test_torch_drop_in_prints_what_the_pages_say(tmp_path):
    pytest.importorskip("torch")
    out = run(first_python_block(*RUN["torch"]), tmp_path).splitlines()
    for page, heading in [RUN["torch"], ("README.md", "### PyTorch")]:
        claim = re.search(r"The fourth line printed is `(.*?)`", one_line(section(page, heading)))
        assert claim and out[3] == claim.group(1), page


def test_core_base_schedule_example_prints_what_the_page_says(tmp_path):
    out = run(first_python_block(*RUN["core_base"]), tmp_path).splitlines()
    claim = re.search(r"It prints `(.*?)` and then\s+`(.*?)`", section(*RUN["core_base"]))
    assert claim and out[5:7] == list(claim.groups())


def test_torch_warmup_example_prints_what_the_page_says(tmp_path):
    pytest.importorskip("torch")
    out = run(first_python_block(*RUN["torch_warmup"]), tmp_path).splitlines()
    text = one_line(section(*RUN["torch_warmup"]))
    claim = re.search(r"The fourth line printed is `(.*?)`.*the last is `(.*?)`", text)
    assert claim and [out[3], out[-1]] == list(claim.groups())


def test_torch_capturable_example_prints_what_the_pages_say(tmp_path):
    pytest.importorskip("torch")
    out = run(first_python_block(*RUN["torch_capturable"]), tmp_path).splitlines()
    readme = "### PyTorch, per batch, compiled: `capturable=True`"
    for page, heading in [RUN["torch_capturable"], ("README.md", readme)]:
        claim = re.search(r"It prints `(.*?)`", one_line(section(page, heading)))
        assert claim and out[-1] == claim.group(1), page


@pytest.mark.parametrize("example, framework", [("restore", "torch"), ("optax_restore", "optax")])
def test_restore_examples_print_what_the_page_says(tmp_path, example, framework):
    pytest.importorskip(framework)
    out = run(first_python_block(*RUN[example]), tmp_path).splitlines()
    claim = re.search(r"The fourth line printed is `(.*?)`", one_line(section(*RUN[example])))
    assert claim and out[3] == claim.group(1)


@pytest.mark.slow
def test_lightning_example_fits_and_prints_what_the_page_says(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("pytorch_lightning")
    out = run(first_python_block(*RUN["lightning"]), tmp_path).splitlines()
    claim = re.search(r"It prints the last decision and lrs, `(.*?)`", section(*RUN["lightning"]))
    assert claim and out[-1] == claim.group(1)


@pytest.mark.slow
def test_keras_example_runs(tmp_path):
    pytest.importorskip("keras")
    out = run(first_python_block(*RUN["keras"]), tmp_path)
    claim = re.search(r"prints Keras's own message, e.g.\s+`(Epoch [^`]*)`", section(*RUN["keras"]))
    assert claim and claim.group(1) in out
    assert (tmp_path / "plateau_state.json").exists()


@pytest.mark.slow
def test_optax_example_runs(tmp_path):
    pytest.importorskip("optax")
    out = run(first_python_block(*RUN["optax"]), tmp_path)
    assert "reduced" in out


@pytest.mark.slow
def test_optax_graph_example_prints_what_the_page_says(tmp_path):
    pytest.importorskip("optax")
    out = run(first_python_block(*RUN["optax_graph"]), tmp_path).splitlines()
    claim = re.search(r"It prints `(.*?)`", one_line(section(*RUN["optax_graph"])))
    assert claim and out[-1] == claim.group(1)


@pytest.mark.slow
def test_optax_checkpoint_example_restores_what_the_page_says(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    pytest.importorskip("flax")
    out = run(first_python_block(*RUN["optax_checkpoint"]), tmp_path).splitlines()
    prose = one_line(section(*RUN["optax_checkpoint"]))
    claim = re.search(r"It prints `(.*?)` \(.*?\) then `(.*?)`", prose)
    assert claim and out[-2:] == [claim.group(1), claim.group(2)]


@pytest.mark.slow
def test_keras_base_schedule_example_prints_what_the_page_says(tmp_path):
    pytest.importorskip("keras")
    out = run(first_python_block(*RUN["keras_base"]), tmp_path).splitlines()
    claim = re.search(
        r"The first line printed is `(.*?)`,\s+the second `(.*?)`, the last `(.*?)`",
        one_line(section(*RUN["keras_base"])),
    )
    assert claim and [out[0], out[1], out[-1]] == list(claim.groups())


@pytest.mark.slow
def test_optax_base_schedule_example_prints_what_the_page_says(tmp_path):
    pytest.importorskip("optax")
    lines = run(first_python_block(*RUN["optax_base"]), tmp_path).splitlines()
    prose = one_line(section(*RUN["optax_base"]))
    first = re.search(r"The first line printed is `(.*?)`", prose)
    assert first and lines[0] == first.group(1)
    cut = re.search(r"\(`reduced` at epochs (\d+), (\d+) and (\d+)\)", prose)
    assert cut and [int(e) for e in cut.groups()] == [
        int(line.split()[0]) for line in lines if line.endswith(" reduced")
    ]
    assert [line.split()[1] for line in lines[:3]] == ["scale=0.25", "scale=0.625", "scale=1"]


def test_readme_torch_base_example_prints_what_it_says(tmp_path):
    pytest.importorskip("torch")
    out = run(first_python_block(*RUN["readme_torch_base"]), tmp_path).splitlines()
    text = one_line(section(*RUN["readme_torch_base"]))
    claim = re.search(r"It prints `(.*?)` first .*?and\s+`(.*?)` fifth", text)
    assert claim and [out[0], out[4]] == list(claim.groups())


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["keras", "optax"])
def test_readme_keras_and_optax_base_examples_print_what_they_say(tmp_path, framework):
    pytest.importorskip(framework)
    where = RUN[f"readme_{framework}_base"]
    out = run(first_python_block(*where), tmp_path).splitlines()
    claim = re.search(r"It prints `(.*?)`", one_line(section(*where)))
    assert claim and out[-1] == claim.group(1)


# What the pages quote ---------------------------------------------------------------


def test_bad_input_messages_are_the_real_ones():
    examples = [code for lang, code in code_blocks(read("docs/bad-input.md")) if lang == "text"]
    lines = examples[0].splitlines()
    assert len(lines) >= 2 and len(lines) % 2 == 0
    config = plateau.PlateauConfig()
    namespace = {"plateau": plateau, "config": config, "state": plateau.init(0.1, config)}
    for call, error in zip(lines[::2], lines[1::2]):
        assert call.startswith(">>> ")
        kind, message = error.split(": ", 1)
        with pytest.raises(getattr(builtins, kind)) as raised:
            eval(call[4:], namespace)
        assert str(raised.value) == message, call


def simulate(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plateau", "simulate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_abridged_output(quoted: str, printed: str) -> None:
    """Each quoted line but `...` is a printed line, in the printed order."""
    printed_lines = iter(printed.splitlines())
    for line in quoted.splitlines():
        if line != "...":
            assert line in printed_lines, f"not printed (or out of order): {line!r}"


@pytest.mark.parametrize(
    "heading, index, args",
    [
        ("# See what a schedule would do: `plateau simulate`", 0, ["--patience", "3"]),
        (
            "## Compare configs before a long run",
            0,
            ["--patience", "3", "--compare", "patience=5", "--compare", "patience=10,factor=0.5"],
        ),
    ],
)
def test_cli_prints_what_the_page_shows(heading, index, args):
    quoted = [code for lang, code in code_blocks(section("docs/cli.md", heading)) if lang == "text"]
    result = simulate("examples/digits_metrics.csv", *args)
    assert result.returncode == 0, result.stderr
    assert_abridged_output(quoted[index], result.stdout)


def test_readme_detector_comparison_is_what_its_command_prints():
    text = section("README.md", "## Noisy metrics: judge the trend, not the best ever")
    (command,) = [code for lang, code in code_blocks(text) if lang == "sh"]
    (quoted,) = [code for lang, code in code_blocks(text) if lang == "text"]
    program, subcommand, *args = shlex.split(command.replace("\\\n", " "))  # continued lines
    assert (program, subcommand) == ("plateau", "simulate")
    result = simulate(*args)
    assert result.returncode == 0, result.stderr
    assert_abridged_output(quoted, result.stdout)


def test_cli_error_line_is_the_real_one(tmp_path):
    claim = re.search(r"for example\s+`(plateau: error: metrics\.csv[^`]*)`", read("docs/cli.md"))
    assert claim
    (tmp_path / "metrics.csv").write_text("epoch,val_loss\n0,1.0\n1,0.9\n2,0.8\n3,abc\n")
    result = simulate("metrics.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == claim.group(1)


# Links ------------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def links(page: str) -> list[str]:
    text = "\n".join(line for line, code in lines_outside_code(read(page)) if not code)
    return LINK.findall(re.sub(r"`[^`]*`", "", text))


@pytest.mark.parametrize("page", PAGES)
def test_every_link_between_the_pages_resolves(page):
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        resolved = (ROOT / page).parent / path if path else ROOT / page
        assert resolved.exists(), f"{page}: broken link {target}"
        if anchor:
            assert anchor in {slug(h) for h in headings(resolved.read_text())}, (
                f"{page}: no heading for {target}"
            )


@pytest.mark.parametrize("index", ["README.md", "docs/index.md"])
def test_every_docs_page_is_linked_from_the_index(index):
    linked = {((ROOT / index).parent / t.partition("#")[0]).resolve() for t in links(index)}
    for page in PAGES:
        if page.startswith("docs/") and page not in (index, "docs/index.md"):
            assert (ROOT / page).resolve() in linked, f"{index} does not link {page}"
