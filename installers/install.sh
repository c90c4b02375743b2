#!/bin/sh
# Island installer for Linux, macOS and WSL (the setup guide's Quick Install):
#
#   curl -fsSL https://archipelag.io/install.sh | sh
#
# 1. detects the platform (OS and architecture);
# 2. downloads the `island` binary for it, with its .sha256 and .sig files, and checks both:
#    the checksum, and the signature against the release key below (on any mismatch it stops,
#    says which, and installs nothing);
# 3. puts it in ~/.island/bin, creates ~/.island/config.toml if there is none (an existing one
#    is never touched), and adds ~/.island/bin to PATH in your shell's profile;
# 4. offers to set up Docker (system Docker on Linux, Colima on macOS) when it is missing.
#
# Settings, as environment variables:
#   ISLAND_RELEASES_URL   where the release files are (default: the latest GitHub release)
#   ISLAND_HOME           the Island folder (default: ~/.island)
#   ISLAND_RELEASE_KEY    a PEM public key file to check signatures with instead of the
#                         built-in release key (for mirrors and tests)
#   ISLAND_NO_MODIFY_PATH=1  leave the shell profiles alone
#   ISLAND_NONINTERACTIVE=1  ask nothing (unattended installs)
set -eu

RELEASES_URL="${ISLAND_RELEASES_URL:-https://github.com/archipelag-io/node-agent/releases/latest/download}"
ISLAND_DIR="${ISLAND_HOME:-$HOME/.island}"
BIN_DIR="$ISLAND_DIR/bin"

# The public half of the key the release workflow signs binaries with (ECDSA P-256); the
# same as installers/release-key.pem (a test checks that they agree).
RELEASE_KEY='-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgpSoz3HSgmOJzNJW/DtbXiztFqs7
kUjxhIii+1wtTVxYFtIadX188JL7fInmaZAF73bNHqW2oATKmh/HVgdX4g==
-----END PUBLIC KEY-----'

say() { printf '%s\n' "$*"; }
fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

platform() {
    os=$(uname -s)
    arch=$(uname -m)
    case "$os" in
        Linux) os=linux ;;
        Darwin) os=darwin ;;
        *) fail "no Island binary for this system ($os $arch). Windows: use install.ps1 or WSL; others: build from source (https://github.com/archipelag-io/node-agent)" ;;
    esac
    case "$arch" in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=aarch64 ;;
        *) fail "no Island binary for this system ($os $arch); build from source (https://github.com/archipelag-io/node-agent)" ;;
    esac
    echo "island-$os-$arch"
}

fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsSL --proto '=https,http' -o "$2" "$1" || fail "cannot download $1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1" || fail "cannot download $1"
    else
        fail "neither curl nor wget is installed: install one and run this again"
    fi
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        fail "no sha256sum or shasum to check the download with"
    fi
}

verify() {
    asset=$1
    dir=$2
    expected=$(cut -d' ' -f1 <"$dir/$asset.sha256" | tr 'A-F' 'a-f')
    actual=$(sha256_of "$dir/$asset")
    [ "$expected" = "$actual" ] ||
        fail "the checksum of $asset does not match $asset.sha256 (expected $expected, got $actual): the download is damaged or was tampered with; nothing was installed"
    command -v openssl >/dev/null 2>&1 || fail "openssl is needed to check the release signature: install it and run this again"
    key="$dir/release-key.pem"
    if [ -n "${ISLAND_RELEASE_KEY:-}" ]; then
        cp "$ISLAND_RELEASE_KEY" "$key"
    else
        printf '%s\n' "$RELEASE_KEY" >"$key"
    fi
    openssl dgst -sha256 -verify "$key" -signature "$dir/$asset.sig" "$dir/$asset" >/dev/null 2>&1 ||
        fail "the signature of $asset is not the release key's: the download was not made by the Island release; nothing was installed"
}

add_to_path() {
    [ "${ISLAND_NO_MODIFY_PATH:-}" = 1 ] && return 0
    case ":$PATH:" in *":$BIN_DIR:"*) return 0 ;; esac
    line="export PATH=\"$BIN_DIR:\$PATH\""
    for profile in "$HOME/.profile" "$HOME/.bashrc" "$HOME/.zshrc"; do
        # ~/.profile always; the others only when the shell that reads them is in use.
        [ "$profile" = "$HOME/.profile" ] || [ -f "$profile" ] || continue
        grep -qsF "$line" "$profile" && continue
        printf '\n# Added by the Island installer\n%s\n' "$line" >>"$profile"
        say "Added $BIN_DIR to PATH in $profile"
    done
}

offer_docker() {
    command -v docker >/dev/null 2>&1 && return 0
    say ""
    say "Docker is not installed: Island will run WASM Cargos only. For container Cargos:"
    case "$(uname -s)" in
        Darwin) steps="brew install colima docker && colima start --cpu 2 --memory 4" ;;
        *) steps="sudo apt-get install -y docker.io && sudo usermod -aG docker \"\$USER\"" ;;
    esac
    say "  $steps"
    # Piped into sh, standard input is this script: ask on the terminal, if there is one.
    if [ "${ISLAND_NONINTERACTIVE:-}" != 1 ] && [ -r /dev/tty ] && [ -w /dev/tty ] && (: </dev/tty) 2>/dev/null; then
        printf 'Set up Docker now? [y/N] ' >/dev/tty
        read -r answer </dev/tty || answer=n
        case "$answer" in
            y | Y | yes) sh -c "$steps" || say "Docker set-up did not finish; run the command above later." ;;
        esac
    fi
}

main() {
    asset=$(platform)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    say "Downloading $asset from $RELEASES_URL"
    for f in "$asset" "$asset.sha256" "$asset.sig"; do
        fetch "$RELEASES_URL/$f" "$tmp/$f"
    done
    verify "$asset" "$tmp"
    mkdir -p "$BIN_DIR"
    chmod 755 "$tmp/$asset"
    # Renamed into place: a running Island keeps its old binary until it restarts.
    mv -f "$tmp/$asset" "$BIN_DIR/island.new"
    mv -f "$BIN_DIR/island.new" "$BIN_DIR/island"
    say "Installed $("$BIN_DIR/island" --version) to $BIN_DIR/island"
    if [ -e "$ISLAND_DIR/config.toml" ]; then
        say "Kept your configuration at $ISLAND_DIR/config.toml"
    else
        ISLAND_HOME="$ISLAND_DIR" "$BIN_DIR/island" config init >/dev/null
        say "Created a default configuration at $ISLAND_DIR/config.toml"
    fi
    add_to_path
    offer_docker
    say ""
    say "Done. Open a new terminal, then start Island with:"
    say "  island --agent --config $ISLAND_DIR/config.toml"
    say "or keep it running in the background: island service install"
}

main "$@"
