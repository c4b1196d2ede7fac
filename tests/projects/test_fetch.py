"""``runyard.projects.fetch``: local directories and real git repositories (file:// URIs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runyard.projects import ExecutionException, fetch_project
from runyard.projects.fetch import is_local_uri, parse_subdirectory, source_tags
from tests.projects.project_files import demo_project, git, git_repo


@pytest.fixture
def clones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary directories (where clones go) under tmp_path."""
    import tempfile

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "repo"
    return root, git_repo(root)


def test_subdirectory_is_split_off() -> None:
    assert parse_subdirectory("file:///r#models/demo") == ("file:///r", "models/demo")
    assert parse_subdirectory("'https://h/r.git#x'") == ("https://h/r.git", "x")
    assert parse_subdirectory("/local/dir") == ("/local/dir", "")
    for bad in ("r#../up", "r#/abs", "r#a/./b"):
        with pytest.raises(ExecutionException, match="Invalid project subdirectory"):
            parse_subdirectory(bad)


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("/abs/dir", True),
        ("relative/dir", True),
        (".", True),
        ("file:///srv/repo", False),
        ("https://github.com/mlflow/mlflow-example", False),
        ("git@github.com:mlflow/mlflow-example.git", False),
    ],
)
def test_local_and_git_uris(uri: str, local: bool) -> None:
    assert is_local_uri(uri) is local


def test_local_directory_is_used_in_place(tmp_path: Path) -> None:
    project = demo_project(tmp_path / "demo")
    fetched = fetch_project(str(project))
    assert fetched.work_dir == project.resolve()
    assert fetched.clone_dir is None
    assert fetched.source_name == str(project.resolve())
    assert fetched.git_commit is None
    assert source_tags(fetched) == {
        "mlflow.source.name": str(project.resolve()),
        "mlflow.source.type": "PROJECT",
    }


def test_local_directory_errors(tmp_path: Path) -> None:
    demo_project(tmp_path / "demo")
    with pytest.raises(ExecutionException, match="Setting a version is only supported for Git"):
        fetch_project(str(tmp_path / "demo"), version="main")
    with pytest.raises(ExecutionException, match="Project directory '.*nowhere' does not exist"):
        fetch_project(str(tmp_path / "nowhere"))
    with pytest.raises(ExecutionException, match="is not a directory"):
        fetch_project(str(tmp_path / "demo" / "report.py"))
    with pytest.raises(ExecutionException, match="Could not find subdirectory missing of"):
        fetch_project(f"{tmp_path / 'demo'}#missing")


@pytest.mark.slow
def test_local_directory_in_a_git_work_tree(repo: tuple[Path, dict[str, str]]) -> None:
    root, commits = repo
    git(root, "remote", "add", "upstream", "https://example.com/org/repo.git")
    fetched = fetch_project(str(root / "models" / "demo"))
    assert fetched.source_name == f"file://{root.resolve()}#models/demo"
    assert fetched.git_commit == commits["first"]
    assert fetched.repo_url == "https://example.com/org/repo.git"
    assert fetched.clone_dir is None


@pytest.mark.slow
def test_git_uri_is_cloned_at_its_default_branch(
    repo: tuple[Path, dict[str, str]], clones: Path
) -> None:
    root, commits = repo
    uri = f"file://{root}#models/demo"
    fetched = fetch_project(uri)
    assert fetched.clone_dir is not None
    assert fetched.clone_dir.parent == clones
    assert fetched.work_dir == fetched.clone_dir / "models" / "demo"
    assert "default: 0.5" in (fetched.work_dir / "MLproject").read_text()
    assert source_tags(fetched) == {
        "mlflow.source.name": uri,
        "mlflow.source.type": "PROJECT",
        "mlflow.source.git.commit": commits["first"],
        "mlflow.source.git.repoURL": f"file://{root}",
        "mlflow.gitRepoURL": f"file://{root}",
    }


@pytest.mark.slow
def test_version_checks_out_a_branch(repo: tuple[Path, dict[str, str]], clones: Path) -> None:
    root, commits = repo
    fetched = fetch_project(f"file://{root}#models/demo", version="feature")
    assert fetched.git_commit == commits["feature"]
    assert fetched.branch == "feature"
    assert "default: 0.7" in (fetched.work_dir / "MLproject").read_text()
    tags = source_tags(fetched)
    assert tags["mlflow.source.git.branch"] == "feature"
    assert tags["mlflow.gitBranchName"] == "feature"


@pytest.mark.slow
@pytest.mark.parametrize("length", [40, 8])
def test_version_checks_out_a_commit(
    repo: tuple[Path, dict[str, str]], clones: Path, length: int
) -> None:
    root, commits = repo
    fetched = fetch_project(f"file://{root}", version=commits["feature"][:length])
    assert fetched.git_commit == commits["feature"]
    assert fetched.branch is None
    assert (fetched.work_dir / "models" / "demo" / "MLproject").is_file()
    assert "mlflow.source.git.branch" not in source_tags(fetched)


@pytest.mark.slow
def test_version_checks_out_a_tag(repo: tuple[Path, dict[str, str]], clones: Path) -> None:
    root, commits = repo
    fetched = fetch_project(f"file://{root}#models/demo", version="v1")
    assert fetched.git_commit == commits["first"]
    assert fetched.branch is None


@pytest.mark.slow
def test_unknown_version_is_refused_and_leaves_nothing(
    repo: tuple[Path, dict[str, str]], clones: Path
) -> None:
    root, _ = repo
    with pytest.raises(ExecutionException) as info:
        fetch_project(f"file://{root}", version="no-such-branch")
    message = info.value.message
    assert message.startswith(
        f"Unable to checkout version 'no-such-branch' of git repo file://{root} - please ensure "
        "that the version exists in the repo: "
    )
    assert "\n" not in message
    assert list(clones.iterdir()) == []


@pytest.mark.slow
def test_missing_subdirectory_of_a_clone_is_refused(
    repo: tuple[Path, dict[str, str]], clones: Path
) -> None:
    root, _ = repo
    with pytest.raises(ExecutionException, match="Could not find subdirectory nope of file://"):
        fetch_project(f"file://{root}#nope")
    assert list(clones.iterdir()) == []


@pytest.mark.slow
def test_unreachable_repository_is_one_line(tmp_path: Path, clones: Path) -> None:
    with pytest.raises(ExecutionException) as info:
        fetch_project(f"file://{tmp_path}/no-repo")
    assert info.value.message.startswith(f"Could not clone git repo file://{tmp_path}/no-repo: ")
    assert "\n" not in info.value.message
    assert list(clones.iterdir()) == []
