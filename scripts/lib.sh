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

# Debian packages the PC/SC build and the system tests need; xmllint (libxml2-utils) and openssl check the
# interchange files against the ISO 20022 schemas and their signatures.
# qemu-system-arm runs the firmware card (mps2-an386, Cortex-M4).
SYSTEM_PACKAGES=(pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools opensc libxml2-utils openssl qemu-system-arm)

# Installs the missing SYSTEM_PACKAGES with apt-get; fails loudly (never skips) when that is impossible.
ensure_system_packages() {
  local missing=() package
  for package in "${SYSTEM_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  step "installing system packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: missing system packages (${missing[*]}) and no root apt-get to install them;" \
         "install them, then run this again" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
