#!/usr/bin/env bash
# `make wheel-check`: use the built wheel the way a user would. Checks the artefacts in DIST
# (auditwheel, twine, README links, sdist contents), installs the wheel into a clean virtualenv
# outside the source tree, and from a project directory that holds only a copy of examples/ runs
# `perago --version`, `perago check`, `perago extract` (byte-equal to tests/golden) and the
# end-to-end demo, whose lakeFS and Conductor run on free ports under a state dir of their own.
# Usage: bash .ci/wheel-check.sh [DIST]   (PYTHON=python3.12 picks the virtualenv's interpreter)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dist=$(cd "${1:-$repo/dist}" && pwd)
tools=$repo/.venv/bin # auditwheel and twine (make tools)
python=${PYTHON:-python3}
started=$(date +%s)
phase_start=$started

phase() { # print the time the previous phase took, then the next phase's title
	local now
	now=$(date +%s)
	echo "   ($((now - phase_start))s)"
	phase_start=$now
	echo "== wheel-check: $*"
}

shopt -s nullglob
wheels=("$dist"/perago-*.whl)
sdists=("$dist"/perago-*.tar.gz)
if [ ${#wheels[@]} != 1 ] || [ ${#sdists[@]} != 1 ]; then
	echo "error: want exactly one perago wheel and one sdist in $dist (run make wheel)" >&2
	exit 1
fi
wheel=${wheels[0]}
sdist=${sdists[0]}
# A wheel's name is name-version-python-abi-platform.whl.
version=$(basename "$wheel" .whl | cut -d- -f2)
tag=$(basename "$wheel" .whl | cut -d- -f5)

echo "== wheel-check: $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)," \
	"$(basename "$sdist") ($(du -k "$sdist" | cut -f1) KiB)"
case $tag in
manylinux_* | manylinux20*) ;;
*)
	echo "error: the wheel's platform tag $tag is not a manylinux tag" >&2
	exit 1
	;;
esac
show=$("$tools/auditwheel" show "$wheel")
echo "$show"
# auditwheel wraps its lines; the tag in the name must be exactly the one the binary allows.
if ! tr -s ' \n' '  ' <<<"$show" | grep -qF "consistent with the following platform tag: \"$tag\""; then
	echo "error: auditwheel does not confirm the wheel's own tag $tag" >&2
	exit 1
fi

phase "twine check (metadata and README render)"
"$tools/twine" check --strict "$wheel" "$sdist"

phase "README: no relative links; every docs/ and examples/ path it names is in the sdist"
"$tools/python" - "$wheel" "$sdist" <<'EOF'
import re
import sys
import tarfile
import zipfile
from email.parser import Parser

wheel, sdist = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    readme = Parser().parsestr(archive.read(name).decode()).get_payload()
assert "## Quickstart" in readme, "the README is not the wheel's long description"
links = re.findall(r"\]\(([^)\s]+)[^)]*\)|^\s*\[[^]]+\]:\s*(\S+)", readme, flags=re.M)
relative = [t for pair in links for t in pair if t and not re.match(r"(https?://|mailto:|#)", t)]
assert not relative, f"relative links break on a package index: {relative}"
with tarfile.open(sdist) as archive:
    members = {m.split("/", 1)[1] for m in archive.getnames() if "/" in m}
named = set(re.findall(r"`((?:docs|examples)/[\w./-]*[\w])`", readme))
missing = sorted(path for path in named if path not in members)
assert not missing, f"the README names files the sdist does not ship: {missing}"
for required in ("LICENSE", "README.md", "pyproject.toml", "Cargo.lock"):
    assert required in members, f"the sdist has no {required}"
print(f"ok: {len(links)} links, all absolute; {len(named)} named paths, all in the sdist")
EOF

work=$(mktemp -d "${TMPDIR:-/tmp}/perago-wheel-check.XXXXXX")
venv=$work/venv
project=$work/project
state=$work/servers
cleanup() {
	local rc=$?
	if [ -x "$venv/bin/perago" ] && [ -e "$state" ]; then
		"$venv/bin/perago" dev down --state-dir "$state" >/dev/null 2>&1 || true
	fi
	if [ "$rc" = 0 ]; then
		rm -rf "$work"
	else
		echo "wheel-check failed; kept $work (server logs under servers/)" >&2
	fi
}
trap cleanup EXIT

# Nothing from this shell may point the installed package at the source tree or at other servers.
for name in $(compgen -e); do
	case $name in
	PERAGO_DEV_CACHE_DIR | PERAGO_JAVA) ;;
	PERAGO_* | CONDUCTOR_* | LAKECTL_* | LAKEFS_* | PYTHON* | VIRTUAL_ENV) unset "$name" ;;
	esac
done
export PERAGO_WORKSPACE_ROOT=$work/workspaces PERAGO_LOG_ROOT=$work/logs

phase "clean virtualenv ($("$python" --version)) in $venv; pip install the wheel"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
mkdir -p "$project"
cp -R "$repo/examples" "$project/"
rm -rf "$project/examples/__pycache__"
cd "$project"

phase "the installed package, not the source tree"
"$venv/bin/python" - "$venv" "$repo" <<'EOF'
import sys
from pathlib import Path

venv, repo = (Path(arg).resolve() for arg in sys.argv[1:])
import perago
import perago._native

for module in (perago, perago._native):
    where = Path(module.__file__).resolve()
    assert where.is_relative_to(venv), f"{module.__name__} imported from {where}, not {venv}"
on_path = [p for p in sys.path if Path(p or ".").resolve().is_relative_to(repo)]
assert not on_path, f"the source tree is on sys.path: {on_path}"
print(f"perago {perago.__version__} from {Path(perago.__file__).parent}")
EOF

phase "perago --version"
reported=$("$venv/bin/perago" --version)
echo "$reported"
[ "$reported" = "$version" ] || {
	echo "error: perago --version says $reported, the wheel is $version" >&2
	exit 1
}

for name in render_audio word_count; do
	phase "perago check examples.$name; perago extract examples.$name = tests/golden/$name.json"
	"$venv/bin/perago" check "examples.$name" | tee "$work/check-$name.txt"
	grep -qx "ok: $name" "$work/check-$name.txt"
	"$venv/bin/perago" extract "examples.$name" -o "$work/$name.json"
	cmp "$work/$name.json" "$repo/tests/golden/$name.json"
done

phase "perago dev provision (cached in ${PERAGO_DEV_CACHE_DIR:-~/.cache/perago})"
"$venv/bin/perago" dev provision

phase "the end-to-end demo from the installed wheel (servers on free ports in $state)"
"$venv/bin/python" - "$venv" "$project" "$state" <<'EOF' | tee "$work/demo.txt"
import sys
from pathlib import Path

venv, project, state = sys.argv[1:]
import perago.demo

where = Path(perago.demo.__file__).resolve()
assert where.is_relative_to(Path(venv).resolve()), f"perago.demo imported from {where}"
sys.argv = ["python -m perago.demo", project, "--state-dir", state]
perago.demo.main()
EOF
grep -qx "== workflow COMPLETED" "$work/demo.txt"
grep -q "^published commit: " "$work/demo.txt"
grep -qE "^  (added|changed) +audio/rendered/.+\.txt$" "$work/demo.txt"
if [ -e "$state/servers.json" ] && "$venv/bin/perago" dev status --state-dir "$state" >/dev/null 2>&1; then
	echo "error: the demo left its servers running" >&2
	exit 1
fi

phase "done"
echo "== wheel-check: passed in $(($(date +%s) - started))s"
