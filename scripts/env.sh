# Sourced by .ci/run and scripts/*.sh: build settings for this project's 2-core machines.
# - Link with mold when it is installed (Debian package `mold`): linking is a large share
#   of an incremental test build.
# - Keep the cargo target directory outside the checkout so repeated CI runs on the same
#   machine are incremental (a fresh clone still builds from cold).
if command -v mold >/dev/null 2>&1; then
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS:--C link-arg=-fuse-ld=mold}"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kaudit-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
