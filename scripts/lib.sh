# Shared helpers for scripts/*.sh: install what is missing, announce steps.
CARD_TARGET=thumbv7em-none-eabihf

step() { printf '\n==> %s\n' "$*"; }

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found. Install Rust with rustup (https://rustup.rs), then run this again." >&2
    exit 2
  fi
  if command -v rustup >/dev/null 2>&1; then
    for component in rustfmt clippy; do
      if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        rustup component add "$component"
      fi
    done
  fi
}

ensure_card_target() {
  if ! rustc --print target-libdir --target "$CARD_TARGET" >/dev/null 2>&1 \
    || [ -z "$(ls -A "$(rustc --print target-libdir --target "$CARD_TARGET")" 2>/dev/null)" ]; then
    step "installing the $CARD_TARGET standard library"
    rustup target add "$CARD_TARGET"
  fi
}

# Prints the flash/RAM footprint of a firmware ELF when binutils' `size` is there.
size_report() {
  if command -v size >/dev/null 2>&1; then size "$1"; fi
}
