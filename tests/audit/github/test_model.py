"""The GitHub workflow and action model built from documents."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollgate.audit.findings import Diagnostic
from tollgate.audit.github.expressions import flows
from tollgate.audit.github.model import (
    Action,
    Workflow,
    build_action,
    build_workflow,
    condition,
    expressions,
    load_action,
    load_workflow,
    parse_image,
    parse_uses,
)
from tollgate.audit.source import Document, YMapping, YScalar, load


def workflow(text: str) -> Workflow:
    result = load_workflow(".github/workflows/t.yml", text)
    assert isinstance(result, Workflow), result
    return result


def action(text: str) -> Action:
    result = load_action("action.yml", text)
    assert isinstance(result, Action), result
    return result


def scalar(text: str) -> YScalar:
    document = load("t.yml", f"v: {text}\n")
    assert isinstance(document, Document) and isinstance(document.root, YMapping)
    node = document.root.scalar("v")
    assert node is not None
    return node


# --- on: -------------------------------------------------------------------------------------


def test_on_as_a_string() -> None:
    wf = workflow("on: pull_request_target\njobs: {}\n")
    assert list(wf.triggers) == ["pull_request_target"]
    trigger = wf.triggers["pull_request_target"]
    assert trigger.config is None and trigger.node.line == 1 and trigger.node.column == 5


def test_on_as_a_list() -> None:
    wf = workflow("on: [push, issue_comment]\njobs: {}\n")
    assert list(wf.triggers) == ["push", "issue_comment"]
    assert wf.has_trigger("issue_comment", "workflow_run")
    assert not wf.has_trigger("workflow_run")


def test_on_as_a_mapping_with_settings_and_inputs() -> None:
    wf = workflow(
        """\
on:
  push:
    branches: [main]
  pull_request:
    types: [opened, synchronize]
  schedule:
    - cron: '0 0 * * *'
  workflow_dispatch:
    inputs:
      name:
        description: who
        required: true
        default: world
        type: string
      flag:
        type: boolean
  workflow_call:
    inputs:
      ref: {type: string}
    secrets:
      token: {required: true}
  issues:
jobs: {}
"""
    )
    assert list(wf.triggers) == [
        "push",
        "pull_request",
        "schedule",
        "workflow_dispatch",
        "workflow_call",
        "issues",
    ]
    assert wf.triggers["pull_request"].types() == ("opened", "synchronize")
    assert wf.triggers["push"].types() == ()
    assert wf.triggers["issues"].config is None
    schedule = wf.triggers["schedule"]
    assert schedule.config is not None and schedule.settings is None
    inputs = wf.triggers["workflow_dispatch"].inputs
    assert list(inputs) == ["name", "flag"]
    name = inputs["name"]
    assert name.required is True and name.type == "string"
    assert name.default is not None and name.default.value == "world"
    assert inputs["flag"].required is None
    assert list(wf.triggers["workflow_call"].inputs) == ["ref"]
    assert wf.diagnostics == ()


def test_no_on_at_all() -> None:
    wf = workflow("jobs: {}\n")
    assert wf.triggers == {} and wf.on_node is None


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "contents"),
    [
        ("", "absent", None),
        ("permissions: read-all\n", "read-all", "read"),
        ("permissions: write-all\n", "write-all", "write"),
        ("permissions: {}\n", "none", "none"),
        ("permissions:\n  contents: write\n  id-token: write\n", "scopes", "write"),
        ("permissions:\n  issues: write\n", "scopes", "none"),
        ("permissions: maybe\n", "invalid", None),
    ],
)
def test_workflow_permissions(text: str, kind: str, contents: str | None) -> None:
    wf = workflow(text + "on: push\njobs: {}\n")
    assert wf.permissions.kind == kind
    assert wf.permissions.level("contents") == contents
    assert (kind == "invalid") == bool(wf.diagnostics)


def test_permission_scopes_and_nodes() -> None:
    wf = workflow("permissions:\n  Contents: WRITE\n  issues: read\non: push\njobs: {}\n")
    permissions = wf.permissions
    assert permissions.scopes == {"contents": "write", "issues": "read"}
    assert permissions.writable() == ("contents",)
    node = permissions.scope_nodes["contents"]
    assert (node.line, node.column) == (2, 13)
    assert workflow("permissions: write-all\njobs: {}\n").permissions.writable() == ("*",)


# --- jobs and steps ------------------------------------------------------------------------------

FULL = """\
name: CI
on: [push]
env:
  GLOBAL: 1
defaults:
  run:
    shell: bash
concurrency:
  group: ci-${{ github.ref }}
  cancel-in-progress: true
jobs:
  build:
    name: Build
    runs-on: [self-hosted, linux]
    needs: setup
    if: github.event_name == 'push'
    permissions:
      contents: read
    environment:
      name: production
      url: https://example.com
    outputs:
      out: ${{ steps.s.outputs.x }}
    env:
      JOB: 2
    container:
      image: ghcr.io/org/image:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
      credentials:
        username: user
        password: hunter2
    services:
      db:
        image: postgres
      cache: redis:7
    strategy:
      matrix:
        os: [a, b]
    timeout-minutes: 10
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - id: s
        name: Say
        run: echo "${{ github.event.issue.title }}"
        shell: pwsh
        env:
          A: ${{ inputs.a }}
        working-directory: sub
      - uses: ./local/action
      - uses: docker://alpine:3.20
      - parallel:
          - run: echo one
          - uses: owner/repo/path/to@0123456789abcdef0123456789abcdef01234567
  setup:
    needs: [a, b]
    environment: staging
    runs-on: ubuntu-latest
    steps: []
  call:
    uses: org/repo/.github/workflows/reuse.yml@main
    with:
      x: 1
    secrets: inherit
  call2:
    uses: $/.github/workflows/local.yml
    secrets:
      token: ${{ secrets.TOKEN }}
"""


def test_full_workflow_model() -> None:
    wf = workflow(FULL)
    assert wf.diagnostics == ()
    assert wf.name is not None and wf.name.value == "CI"
    assert wf.env["GLOBAL"].value == "1"
    assert wf.defaults is not None and wf.defaults.shell is not None
    assert wf.concurrency is not None and wf.concurrency.cancel_in_progress is not None
    assert list(wf.jobs) == ["build", "setup", "call", "call2"]

    build = wf.jobs["build"]
    assert build.anchor == "jobs.build" and build.key.line == 12
    assert build.needs == ("setup",) and wf.jobs["setup"].needs == ("a", "b")
    assert build.if_ is not None and build.if_.value == "github.event_name == 'push'"
    assert build.permissions.level("contents") == "read"
    assert build.environment is not None and build.environment.name == "production"
    assert build.environment.url is not None
    setup_env = wf.jobs["setup"].environment
    assert setup_env is not None and setup_env.name == "staging"
    assert build.outputs["out"].value == "${{ steps.s.outputs.x }}"
    assert build.env["JOB"].value == "2"
    assert build.container is not None and build.container.image is not None
    assert build.container.image.is_digest_pinned and build.container.image.tag == "1.2"
    assert build.container.credentials is not None
    assert build.container.credentials.text("password") == "hunter2"
    assert set(build.services) == {"db", "cache"}
    cache_image = build.services["cache"].image
    assert cache_image is not None and cache_image.tag == "7"
    assert build.matrix is not None and build.timeout_minutes is not None
    assert build.runs_on is not None and not build.is_reusable_call


def test_steps_and_anchors() -> None:
    wf = workflow(FULL)
    build = wf.jobs["build"]
    assert [s.anchor for s in build.steps] == [f"jobs.build.steps[{i}]" for i in range(5)]
    checkout, say, local, docker, group = build.steps
    assert checkout.uses is not None and checkout.uses.slug == "actions/checkout"
    assert checkout.uses.ref == "v4" and not checkout.uses.is_sha_pinned
    assert checkout.with_["persist-credentials"].as_bool() is False
    assert say.id is not None and say.id.value == "s" and say.label == "Say"
    assert say.shell is not None and wf.shell(build, say) == "pwsh"
    assert wf.shell(build, checkout) == "bash"
    assert say.env["A"].value == "${{ inputs.a }}"
    assert say.working_directory is not None and say.field_anchor("run") == (
        "jobs.build.steps[1].run"
    )
    assert local.uses is not None and local.uses.kind == "local" and local.uses.is_local
    assert local.uses.repo_path == "local/action" and checkout.uses.repo_path is None
    assert docker.uses is not None and docker.uses.kind == "docker"
    assert docker.uses.image is not None and docker.uses.image.tag == "3.20"
    assert [s.anchor for s in group.parallel] == [
        "jobs.build.steps[4].parallel[0]",
        "jobs.build.steps[4].parallel[1]",
    ]
    nested = group.parallel[1].uses
    assert nested is not None and nested.is_sha_pinned and nested.path == "path/to"
    assert [s.anchor for s in build.all_steps()][-3:] == [
        "jobs.build.steps[4]",
        "jobs.build.steps[4].parallel[0]",
        "jobs.build.steps[4].parallel[1]",
    ]
    assert sum(1 for _ in wf.steps()) == 7
    assert all(s.job_id == "build" for s in build.all_steps())


def test_reusable_workflow_calls() -> None:
    wf = workflow(FULL)
    call, call2 = wf.jobs["call"], wf.jobs["call2"]
    assert call.is_reusable_call and call.uses is not None
    assert call.uses.is_reusable_workflow and call.uses.ref == "main"
    assert call.secrets_inherit and call.secrets == {}
    assert call.with_["x"].value == "1"
    assert call2.uses is not None and call2.uses.kind == "self"
    assert call2.uses.path == ".github/workflows/local.yml" and call2.uses.is_reusable_workflow
    assert call2.uses.repo_path == ".github/workflows/local.yml"
    assert not call2.secrets_inherit and call2.secrets["token"].value == "${{ secrets.TOKEN }}"


# --- A rule-like query: run: steps where github.event.issue.title flows, with positions ------------


def test_rule_like_query_finds_the_expression_with_its_position() -> None:
    wf = workflow(FULL)
    found = []
    for _job, step in wf.steps():
        for match in expressions(step.run):
            if match.expr is None:
                continue
            for ref in flows(match.expr):
                if ref.within("github.event.issue"):
                    assert step.run is not None
                    location = wf.location(step.run, *match.span(ref.node))
                    found.append((step.field_anchor("run"), ref.path, location))
    ((anchor, path, location),) = found
    assert anchor == "jobs.build.steps[1].run" and path == "github.event.issue.title"
    assert (location.line, location.column) == (45, 24)
    line = wf.document.line_text(location.line)
    assert location.end_column is not None
    assert line[location.column - 1 : location.end_column - 1] == "github.event.issue.title"
    assert location.path == ".github/workflows/t.yml"


def test_condition_helper() -> None:
    wf = workflow(FULL)
    build_if = condition(wf.jobs["build"].if_)
    assert build_if is not None and build_if.kind == "bare"
    assert condition(None) is None


# --- uses: and images ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "slug", "path", "ref"),
    [
        ("actions/checkout@v4", "repository", "actions/checkout", None, "v4"),
        ("Actions/Checkout@v4", "repository", "actions/checkout", None, "v4"),
        ("github/codeql-action/init@abc", "repository", "github/codeql-action", "init", "abc"),
        ("actions/checkout", "repository", "actions/checkout", None, None),
        ("./.github/actions/x", "local", None, "./.github/actions/x", None),
        ("$/.github/workflows/w.yml", "self", None, ".github/workflows/w.yml", None),
        ("docker://alpine", "docker", None, None, None),
        ("${{ matrix.action }}", "invalid", None, None, None),
        ("checkout@v4", "invalid", None, None, None),
        ("actions/checkout@", "invalid", None, None, None),
        ("", "invalid", None, None, None),
    ],
)
def test_parse_uses(
    raw: str, kind: str, slug: str | None, path: str | None, ref: str | None
) -> None:
    uses = parse_uses(scalar(f"'{raw}'"))
    assert (uses.kind, uses.slug, uses.path, uses.ref) == (kind, slug, path, ref)


@pytest.mark.parametrize(
    ("raw", "name", "tag", "digest"),
    [
        ("alpine", "alpine", None, None),
        ("alpine:3.20", "alpine", "3.20", None),
        ("localhost:5000/img", "localhost:5000/img", None, None),
        ("localhost:5000/img:1", "localhost:5000/img", "1", None),
        ("img@sha256:abc", "img", None, "sha256:abc"),
        ("ghcr.io/o/i:t@sha256:abc", "ghcr.io/o/i", "t", "sha256:abc"),
    ],
)
def test_parse_image(raw: str, name: str, tag: str | None, digest: str | None) -> None:
    image = parse_image(raw)
    assert (image.name, image.tag, image.digest) == (name, tag, digest)
    assert not image.is_digest_pinned  # none of these digests is a full sha256
    assert parse_image("${{ matrix.image }}").is_expression


# --- Tolerance ------------------------------------------------------------------------------------


def test_wrong_types_become_diagnostics_and_are_skipped() -> None:
    wf = workflow(
        """\
on: push
env: [1, 2]
jobs:
  a:
    runs-on: x
    steps:
      - run: [not, a, scalar]
        with: {x: [1]}
      - just a string
      - run: ok
  b: not-a-mapping
  c:
    needs: {x: 1}
    environment: [x]
    services: [x]
    container: [x]
"""
    )
    messages = [d.message for d in wf.diagnostics]
    assert any(m.startswith("env: expected a mapping") for m in messages)
    assert any("jobs.a.steps[0].run" in m for m in messages)
    assert any("jobs.a.steps[0].with.x" in m for m in messages)
    assert any("jobs.a.steps[1]" in m for m in messages)
    assert any("jobs.b" in m for m in messages)
    assert any("jobs.c.needs" in m for m in messages)
    assert all(d.line is not None for d in wf.diagnostics)
    assert list(wf.jobs) == ["a", "c"]
    steps = wf.jobs["a"].steps
    assert [s.index for s in steps] == [0, 2]
    assert steps[0].run is None and steps[1].run is not None


def test_env_as_an_expression_is_accepted() -> None:
    wf = workflow("on: push\njobs:\n  a:\n    env: ${{ fromJSON(inputs.env) }}\n")
    assert wf.diagnostics == () and wf.jobs["a"].env == {}


def test_top_level_list_is_a_diagnostic() -> None:
    result = load_workflow("w.yml", "- a\n- b\n")
    assert isinstance(result, Diagnostic) and "list" in result.message
    assert result.line == 1
    assert isinstance(load_action("action.yml", "just text\n"), Diagnostic)


def test_document_diagnostics_are_carried() -> None:
    wf = workflow("on: push\non: pull_request\njobs: {}\n")
    assert list(wf.triggers) == ["pull_request"]
    assert any("duplicate" in d.message for d in wf.diagnostics)


def test_load_passes_through_a_file_diagnostic() -> None:
    assert isinstance(load_workflow("w.yml", "a: [\n"), Diagnostic)


def test_anchors_and_merge_keys_in_workflows() -> None:
    wf = workflow(
        """\
on: push
jobs:
  a: &base
    runs-on: ubuntu-latest
    steps:
      - &co
        uses: actions/checkout@v4
  b:
    <<: *base
    steps:
      - *co
      - run: echo b
"""
    )
    a, b = wf.jobs["a"], wf.jobs["b"]
    assert b.runs_on is a.runs_on
    assert [s.anchor for s in b.steps] == ["jobs.b.steps[0]", "jobs.b.steps[1]"]
    assert b.steps[0].node is a.steps[0].node and b.steps[0].uses is not None


# --- Actions --------------------------------------------------------------------------------------


def test_composite_action() -> None:
    act = action(
        """\
name: My action
description: does things
inputs:
  token:
    description: a token
    required: false
    default: ${{ github.token }}
  title: {}
outputs:
  result:
    description: out
    value: ${{ steps.x.outputs.r }}
runs:
  using: Composite
  steps:
    - id: x
      run: echo "${{ inputs.title }}"
      shell: bash
    - uses: actions/setup-node@v4
"""
    )
    assert act.is_composite and not act.is_docker and act.using == "composite"
    assert list(act.inputs) == ["token", "title"]
    token = act.inputs["token"]
    assert token.required is False and token.default is not None
    assert act.outputs["result"].value is not None
    assert [s.anchor for s in act.steps] == ["runs.steps[0]", "runs.steps[1]"]
    assert act.steps[0].job_id is None
    (match,) = expressions(act.steps[0].run)
    assert match.expr is not None and [r.path for r in flows(match.expr)] == ["inputs.title"]
    assert act.location(act.node).path == "action.yml"
    assert act.diagnostics == ()


def test_docker_and_javascript_actions() -> None:
    docker = action(
        "name: d\nruns:\n  using: docker\n  image: docker://alpine:3\n  env: {A: b}\n"
        "  args: [x, y]\n"
    )
    assert docker.is_docker and docker.image_ref is not None and docker.image_ref.tag == "3"
    assert docker.env["A"].value == "b" and docker.args is not None
    dockerfile = action("runs:\n  using: docker\n  image: Dockerfile\n")
    assert dockerfile.image is not None and dockerfile.image_ref is None
    js = action("runs:\n  using: node20\n  main: dist/index.js\n  post: dist/post.js\n")
    assert js.is_javascript and js.main is not None and js.post is not None and js.steps == ()


def test_action_without_runs() -> None:
    act = action("name: nothing\n")
    assert act.using is None and act.steps == () and act.runs is None


def test_build_functions_take_documents() -> None:
    document = load("w.yml", "on: push\njobs: {}\n")
    assert isinstance(document, Document)
    assert isinstance(build_workflow(document), Workflow)
    assert isinstance(build_action(document), Action)


# --- Fuzzing: a model or a diagnostic, never an exception ---------------------------------------

_KEYS = st.sampled_from(
    [
        "on",
        "jobs",
        "steps",
        "run",
        "uses",
        "with",
        "env",
        "permissions",
        "needs",
        "environment",
        "container",
        "services",
        "secrets",
        "inputs",
        "outputs",
        "runs",
        "using",
        "parallel",
        "if",
        "defaults",
        "concurrency",
        "strategy",
        "image",
        "workflow_dispatch",
        "schedule",
        "x",
    ]
)

_yaml_values = st.recursive(
    st.sampled_from(["", "null", "x", "read-all", "inherit", "composite", "'${{ a }}'", "1"]),
    lambda children: (
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
        | st.dictionaries(_KEYS, children, max_size=4).map(
            lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
        )
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_KEYS, _yaml_values, max_size=6))
def test_fuzz_model_builders(mapping: dict[str, str]) -> None:
    text = "".join(f"{key}: {value}\n" for key, value in mapping.items())
    document = load("fuzz.yml", text)
    if isinstance(document, Diagnostic):
        return
    wf = build_workflow(document)
    act = build_action(document)
    for model in (wf, act):
        if isinstance(model, Diagnostic):
            continue
        steps = [s for _, s in model.steps()] if isinstance(model, Workflow) else model.steps
        for step in steps:
            for match in expressions(step.run):
                assert match.expr is not None or match.error is not None
            assert step.anchor
