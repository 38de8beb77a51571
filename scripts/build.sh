#!/usr/bin/env bash
# Build dist/vigint, one self-contained executable, from a clean checkout.
# Uses the active virtual environment if there is one, else makes .venv-build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    python3 -m venv .venv-build
    # shellcheck disable=SC1091
    . .venv-build/bin/activate
    pip install --quiet --upgrade pip
fi
pip install --quiet -e '.[postgres,s3]' 'pyinstaller>=6.10'
pyinstaller --noconfirm --clean --log-level WARN vigint.spec
ls -l dist/vigint
dist/vigint --version
