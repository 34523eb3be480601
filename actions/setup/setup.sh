#!/usr/bin/env bash
# Install tollgate into a private virtual environment for the actions in this repository.
#
# Every action here runs this script (`bash "$GITHUB_ACTION_PATH/.../setup.sh"`) rather than
# `uses: ./actions/setup`: inside a composite action `./` means the caller's workspace, not
# this repository.
#
# - The venv lives in $RUNNER_TEMP/tollgate-venv: outside the workspace (never uploaded as an
#   artifact, never audited, never cached by accident), emptied by the runner at the end of
#   the job, and reused by later tollgate steps of the same job.
# - Dependencies come from requirements/*.txt with --require-hashes; those files also say
#   --only-binary :all:, so no sdist is built with unpinned build dependencies.
# - tollgate itself is this checkout (the ref the caller pinned), installed with --no-deps and
#   --no-build-isolation: setuptools comes hash-pinned from requirements/build.txt.
# - It does not touch the caller's PATH or Python (no actions/setup-python here).
#
# Environment:
#   GHA_TOLLGATE_PYTHON  interpreter (3.10+) that creates the venv (default: python3, python)
#   GHA_TOLLGATE_AWS     "true": also install requirements/aws.txt (botocore)
# Step outputs: python (the venv's interpreter), tollgate (its console script), version.
set -euo pipefail

root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)"
requirements="$root/requirements"
temp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
venv="$temp/tollgate-venv"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PYTHONUTF8=1

fail() {
  # One annotation line; the message is ours, never an input.
  echo "::error title=tollgate setup::$1" >&2
  exit 2
}

# The first interpreter that is 3.10 or later (on Windows, `python3` can be the Store stub).
candidates=(python3 python)
if [[ -n "${GHA_TOLLGATE_PYTHON:-}" ]]; then candidates=("$GHA_TOLLGATE_PYTHON"); fi
python=""
for candidate in "${candidates[@]}"; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
[[ -n "$python" ]] ||
  fail "tollgate needs Python 3.10 or later: add actions/setup-python before this step, or set the python input"

case "$(uname -s)" in
  MINGW* | MSYS* | CYGWIN*) bin="$venv/Scripts" exe=".exe" ;;
  *) bin="$venv/bin" exe="" ;;
esac
venv_python="$bin/python$exe"

# The stamp names what the venv was built from; anything else (another tollgate ref used
# earlier in the job, a half-built venv) is rebuilt.
stamp="$root $(cat "$requirements/action.txt" "$requirements/build.txt" | cksum)"
if [[ ! -x "$venv_python" || "$(cat "$venv/.tollgate-stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "::group::tollgate: creating $venv"
  rm -rf -- "$venv"
  "$python" -m venv -- "$venv"
  "$venv_python" -m pip install --quiet --require-hashes \
    -r "$requirements/action.txt" -r "$requirements/build.txt"
  "$venv_python" -m pip install --quiet --no-deps --no-build-isolation -- "$root"
  printf '%s' "$stamp" >"$venv/.tollgate-stamp"
  echo "::endgroup::"
fi

# botocore is large and only `tollgate creds aws` needs it: installed on request, once.
if [[ "${GHA_TOLLGATE_AWS:-false}" == "true" && ! -e "$venv/.tollgate-aws" ]]; then
  echo "::group::tollgate: installing botocore"
  # action.txt again so that pip sees the whole pinned set (aws.txt repeats urllib3).
  "$venv_python" -m pip install --quiet --require-hashes \
    -r "$requirements/action.txt" -r "$requirements/aws.txt"
  : >"$venv/.tollgate-aws"
  echo "::endgroup::"
fi

version="$("$venv_python" -m tollgate --version)"
version="${version#tollgate }"
echo "tollgate $version in $venv"
{
  echo "python=$venv_python"
  echo "tollgate=$bin/tollgate$exe"
  echo "version=$version"
} >>"${GITHUB_OUTPUT:-/dev/stdout}"
